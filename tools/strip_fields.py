"""A labeled alert data set with less metadata: how much of triage's grouping rests on
fields that not every source sends (docs/quality.md, "Less metadata").

    python tools/strip_fields.py [--drop-resolves] SRC_DIR DST_DIR FIELD [FIELD ...]

Reads SRC_DIR/events.jsonl[.gz] and writes DST_DIR/events.jsonl with each FIELD removed
from every event, and copies SRC_DIR's other files (the catalog, incidents) beside it. A FIELD of the form ``labels.*`` keeps only the ``alertname`` label,
``labels`` drops them all. ``--drop-resolves`` also leaves out every alert whose status
is resolved (a source that never sends them). The truth fields are kept: ``triage eval alerts DST_DIR``
scores the stripped stream against the same truth.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from triage.evaluation.alerts import EVENT_FILES, events_path, open_text


def strip(event: dict[str, object], fields: list[str]) -> dict[str, object]:
    for name in fields:
        if name == "labels.*":
            labels = event.get("labels")
            event["labels"] = {"alertname": labels["alertname"]} if isinstance(labels, dict) and "alertname" in labels else {}
        else:
            event.pop(name, None)
    return event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("fields", nargs="+")
    parser.add_argument("--drop-resolves", action="store_true", help="leave out every resolved alert")
    args = parser.parse_args()
    args.dst.mkdir(parents=True, exist_ok=True)
    events = events_path(args.src)
    for other in args.src.iterdir():
        if other.is_file() and other.name not in EVENT_FILES:   # the stripped copy replaces them
            shutil.copy2(other, args.dst / other.name)
    with open_text(events) as lines, (args.dst / "events.jsonl").open("w") as out:
        for line in lines:
            if not line.strip():
                continue
            event = json.loads(line)
            if args.drop_resolves and event.get("kind") == "alert" and event.get("status") == "resolved":
                continue
            out.write(json.dumps(strip(event, args.fields)) + "\n")


if __name__ == "__main__":
    main()
