"""Write the demo's history (``triage/data/demo_history.jsonl.gz`` and
``demo_resolutions.json``) from ../shared/data/alerts/boutique-storm.

The demo replays the storm's 08:00-10:00 (``sample_storm.jsonl.gz``). Before it, it
replays this history: the storm day's incident that started before 08:00 (INC-BS0001)
as it happened, and the day's later incidents moved one day back (to 2026-03-10), each
cut to what its first page saw (its events from 2 min before its first alert to 5 min
after, at most 300, and its alerts' resolves); and one change record, the cartservice
v1.0.4 rollout that INC-BS0005's resolution note names ("p99 regression from v1.0.4"),
two minutes before that incident started. The resolutions (responder, note, time,
moved like their incident) are what a PagerDuty webhook would have reported.

Run: ``python tools/make_demo_history.py ../shared/data/alerts/boutique-storm triage/data``
"""

from __future__ import annotations

import gzip
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

WINDOW_START = datetime.fromisoformat("2026-03-11T08:00:00+00:00")
BEFORE, AFTER, MAX_EVENTS = timedelta(minutes=2), timedelta(minutes=5), 300
TRUTH = ("truth_incident", "truth_root_cause")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main(source: Path, out: Path) -> None:
    incidents = [json.loads(line) for line in (source / "incidents.jsonl").open()]
    by_incident: dict[str, list[dict]] = {}
    with gzip.open(source / "events.jsonl.gz", "rt") as lines:
        for line in lines:
            event = json.loads(line)
            by_incident.setdefault(event["truth_incident"], []).append(event)
    history, resolutions = [], []
    for incident in incidents:
        started = _time(incident["started_at"])
        if WINDOW_START <= started < WINDOW_START + timedelta(hours=2):
            continue   # in the replayed storm itself
        shift = timedelta(0) if started < WINDOW_START else timedelta(days=-1)
        events = by_incident.get(incident["id"], [])
        alerts = [e for e in events if e["kind"] == "alert" and e["status"] == "firing"]
        if not alerts:
            continue
        first = _time(alerts[0]["occurred_at"])
        seen = [e for e in events if first - BEFORE <= _time(e["occurred_at"]) <= first + AFTER][:MAX_EVENTS]
        seen += [e for e in events if e["kind"] == "alert" and e["status"] == "resolved"]
        for e in seen:
            moved = {k: v for k, v in e.items() if k not in TRUTH}
            moved["id"] = f"hist-{e['id']}"
            for key in ("occurred_at", "starts_at", "ends_at"):
                if moved.get(key):
                    moved[key] = _iso(_time(moved[key]) + shift)
            history.append(moved)
        resolutions.append({"first_alert": f"hist-{alerts[0]['id']}", "incident": incident["id"],
                            "responder": incident["responder"], "note": incident["resolution_note"],
                            "resolved_at": _iso(_time(incident["resolved_at"]) + shift)})
    history.append({
        "id": "hist-deploy-cartservice-v1.0.4", "kind": "log", "source": "otel",
        "occurred_at": "2026-03-11T08:36:27.280Z", "service": "cartservice", "host": None, "severity": "info",
        "status": "firing", "title": "Deployment cartservice rolled out v1.0.4",
        "body": "deployment.apps/cartservice image updated to v1.0.4 (was v1.0.3); rollout by ci-bot",
        "labels": {"event.type": "deployment", "k8s.deployment.name": "cartservice", "version": "v1.0.4"}})
    history.sort(key=lambda e: (e["occurred_at"], e["id"]))
    with gzip.open(out / "demo_history.jsonl.gz", "wt", encoding="utf-8") as f:
        for e in history:
            f.write(json.dumps(e) + "\n")
    (out / "demo_resolutions.json").write_text(json.dumps(resolutions, indent=1) + "\n", encoding="utf-8")
    print(f"{len(history)} events, {len(resolutions)} resolutions")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
