"""Why a real incident was not paged exactly once: `triage eval alerts`'s replay, traced
per incident. For each real incident (DIR/incidents.jsonl) that got more than one page
or shared a page with another real incident: its pages, what each page's group holds
(truth labels of its firing alerts), the decision that put the incident's first alert
there, and for each other real incident in the group, the decision and score that
brought its first alert in. docs/quality.md, "Pages".

    python tools/page_trace.py ../shared/data/alerts/boutique-week ../shared/data/alerts/boutique-storm
    python tools/page_trace.py --summary ../shared/data/alerts/boutique-week   # the counts alone
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

from triage.correlation import Decision
from triage.correlation.evidence import Joined, Opened
from triage.domain.event import Event, EventKind, Status
from triage.evaluation.alerts import load_labeled_events, read_incident_ids, time_order
from triage.models.embedder import make_embedder
from triage.services.offline_replay import Replay
from triage.settings import Settings


def _fit(decision: Decision) -> str:
    """The score and components of the candidate a decision joined (or the best it did not)."""
    evidence = decision.evidence
    match = evidence.match if isinstance(evidence, Joined) else \
        evidence.best_candidate if isinstance(evidence, Opened) else None
    if match is None:
        return ""
    c = match.components
    onset = " at the onset" if isinstance(evidence, Joined) and evidence.onset is not None else ""
    return (f"score {match.score} (text {c.text}, time {c.time}, topology {c.topology}; {match.text_match}, "
            f"{match.gap_s:.0f} s since its {match.gap_from}, group {match.incident_age_s:.0f} s old, "
            f"{match.hops} hop(s) via {match.via}{onset})")


def _first_firing(events: list[Event], indices: list[int]) -> int:
    return min(indices, key=lambda i: (events[i].occurred_at, events[i].id))


def trace(directory: Path, *, summary: bool) -> None:
    events, truth = load_labeled_events(directory)
    real = read_incident_ids(directory) or set()
    replay = Replay(None, embedder=make_embedder(Settings().embedder))
    order = time_order(events)
    decided = replay.feed([events[i] for i in order])
    replay.finish()
    group: dict[int, str] = {}
    decision: dict[int, Decision] = {}
    for i, d in zip(order, decided, strict=True):
        group[i], decision[i] = d.incident_id, d
    firing: dict[tuple[str, str], list[int]] = defaultdict(list)   # (group, label) -> its firing alerts
    holds: dict[str, Counter[str]] = defaultdict(Counter)
    for i, event in enumerate(events):
        if event.kind is EventKind.alert and event.status is Status.firing:
            firing[(group[i], truth[i])].append(i)
            holds[group[i]][truth[i]] += 1
    belongs: dict[str, list[str]] = defaultdict(list)   # real incident -> the groups of its pages
    for page in replay.pages:
        for label in holds.get(page.group, ()):
            if label in real:
                belongs[label].append(page.group)
    kinds: Counter[str] = Counter()
    for incident in sorted(real):
        groups = belongs.get(incident, [])
        others = sorted({label for g in groups for label in holds[g] if label in real and label != incident})
        if not groups or (len(groups) == 1 and not others):
            continue
        kind = " and ".join(k for k, on in (("split", len(groups) > 1), ("shared", bool(others))) if on)
        kinds[kind] += 1
        if summary:
            continue
        print(f"{directory.name} {incident}: {len(groups)} page(s), {kind}")
        for g in groups:
            first = _first_firing(events, firing[(g, incident)])
            event, d = events[first], decision[first]
            print(f"  page of {g}, holding {dict(holds[g].most_common(4))}")
            print(f"    its first alert {event.occurred_at:%m-%d %H:%M:%S} on {event.service or event.host or '-'}: "
                  f"{event.title[:60]!r}, {d.rule} {_fit(d)}")
            for other in sorted(set(holds[g]) & real - {incident}):
                j = _first_firing(events, firing[(g, other)])
                print(f"    {other}'s first alert here {events[j].occurred_at:%m-%d %H:%M:%S} on "
                      f"{events[j].service or events[j].host or '-'}: {events[j].title[:50]!r}, "
                      f"{decision[j].rule} {_fit(decision[j])}")
    alerting = {label for _, label in firing if label in real}   # as `triage eval alerts` counts them
    missed = len(alerting - belongs.keys())
    print(f"{directory.name}: {sum(kinds.values())} of {len(alerting)} real incidents with a firing alert not "
          f"paged exactly once ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), {missed} missed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--summary", action="store_true", help="print the counts alone")
    args = parser.parse_args()
    for directory in args.directories:
        trace(directory, summary=args.summary)


if __name__ == "__main__":
    main()
