"""How many real incidents of a labeled data set overlap in time with another incident that
shares one of their services, by the truth's own start and end times (DIR/incidents.jsonl):
the incidents an online correlator can only tell apart by what broke, not by where or
when. docs/quality.md, "A precedent lasts resolve_timeout".

    python tools/incident_overlap.py ../shared/data/alerts/boutique-week ../shared/data/alerts/boutique-storm
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main(directories: list[str]) -> None:
    for directory in directories:
        with open(Path(directory) / "incidents.jsonl", encoding="utf-8") as f:
            incidents = [json.loads(line) for line in f if line.strip()]
        sharing: set[str] = set()
        pairs = same_cause = 0
        for i, a in enumerate(incidents):
            for b in incidents[i + 1:]:
                if _at(a["started_at"]) <= _at(b["resolved_at"]) and _at(b["started_at"]) <= _at(a["resolved_at"]):
                    pairs += 1
                    if set(a["services"]) & set(b["services"]):
                        sharing |= {a["id"], b["id"]}
                        same_cause += a["root_cause"]["component"] == b["root_cause"]["component"]
        print(f"{Path(directory).name}: {len(incidents)} incidents, {len(sharing)} overlap in time with another "
              f"sharing a service; {pairs} overlapping pairs, {same_cause} of them sharing a service and their "
              f"root-cause component")


if __name__ == "__main__":
    main(sys.argv[1:])
