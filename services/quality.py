"""How often triage's grouping was right, according to the responders who corrected it.

Merges and splits are grouping labels (``triage.store.grouping_labels``): over the events
of every incident a correction touched, the responders' grouping (each event's incident
now) is the truth, and triage's grouping (the incident it decided, corrections undone) is
scored against it, pairwise and B-cubed (``triage.models.grouping_metrics``). A pair of
events is *together* in the truth when the two share an incident now: a merge of A into B
labels every pair of an A event and a B event together (triage had kept them apart: a
missed pair, which costs recall), a split of S off I labels every pair of an S event and
a remaining I event apart (triage had put them together: a wrong pair, which costs
precision), and the pairs nobody corrected in those incidents count as triage decided
them, confirmed.

Figures come per week and per parameter version, so a change of parameters can be judged:
an event counts in the week (UTC, from Monday) in which its *group* began (the events
linked through either grouping, so one incident is never cut in two) and under the
parameter version its own decision was taken with; the week's total holds its pairs
across versions too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from triage.models.grouping_metrics import PairCounts, bcubed_scores, pair_counts, pairwise_scores
from triage.store.grouping_labels import CorrectionKind, LabeledEvent, grouping_labels

__all__ = ["GroupingQuality", "Scores", "VersionScores", "WeekScores", "grouping_quality", "score_grouping",
           "week_of"]


@dataclass(frozen=True)
class Scores:
    """Triage's grouping of some events against the responders'."""

    events: int
    incidents: int            # groups in the responders' grouping
    triage_groups: int        # groups in triage's
    pairs: PairCounts         # pairs together in both, in the responders' grouping, in triage's
    precision: float          # pairwise: of the pairs triage put together, the share responders kept together
    recall: float             # of the pairs responders hold together, the share triage had put together
    f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float


@dataclass(frozen=True)
class VersionScores:
    parameters_version: int
    scores: Scores


@dataclass(frozen=True)
class WeekScores:
    week: date                       # its Monday (UTC)
    scores: Scores                   # all of the week's events, whatever the version
    versions: list[VersionScores]    # per parameter version, oldest first


@dataclass(frozen=True)
class GroupingQuality:
    since: datetime | None
    until: datetime | None
    merges: int                      # corrections that moved an event of the window
    splits: int
    incomplete: int                  # merges recorded without the events they moved: left out
    total: Scores | None             # None: no event of the window was in a corrected incident
    weeks: list[WeekScores]


def score_grouping(truth: Sequence[str], pred: Sequence[str]) -> Scores:
    """Pairwise and B-cubed scores of ``pred`` against ``truth`` (one label per event).
    With no pair on a side, its pairwise ratio is 1 (nothing to get wrong), as in
    ``pairwise_scores``; ``pairs`` says how many there were."""
    precision, recall, f1 = pairwise_scores(truth, pred)
    b3p, b3r, b3f = bcubed_scores(truth, pred)
    return Scores(events=len(truth), incidents=len(set(truth)), triage_groups=len(set(pred)),
                  pairs=pair_counts(truth, pred), precision=precision, recall=recall, f1=f1,
                  bcubed_precision=b3p, bcubed_recall=b3r, bcubed_f1=b3f)


def week_of(at: datetime) -> date:
    """The Monday (UTC) of the week ``at`` falls in."""
    day = at.astimezone(timezone.utc).date()
    return day - timedelta(days=day.weekday())


def _group_starts(events: Sequence[LabeledEvent]) -> dict[str, datetime]:
    """Event id -> the first occurred_at of its group: the events linked through either
    grouping (union-find over the incident ids of both)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for ev in events:
        a, b = find("r:" + ev.responders), find("t:" + ev.triage)
        if a != b:
            parent[max(a, b)] = min(a, b)
    first: dict[str, datetime] = {}
    for ev in events:
        root = find("r:" + ev.responders)
        if root not in first or ev.occurred_at < first[root]:
            first[root] = ev.occurred_at
    return {ev.event_id: first[find("r:" + ev.responders)] for ev in events}


def _scores(events: Sequence[LabeledEvent]) -> Scores:
    return score_grouping([e.responders for e in events], [e.triage for e in events])


def grouping_quality(engine: sa.Engine, since: datetime | None = None, until: datetime | None = None) -> GroupingQuality:
    """Triage's grouping against the responders' merges and splits, over the events that
    occurred in [since, until), in total, per week and per parameter version."""
    labels = grouping_labels(engine, since, until)
    events = labels.events
    merges = sum(c.kind is CorrectionKind.merge for c in labels.corrections)
    splits = sum(c.kind is CorrectionKind.split for c in labels.corrections)
    if not events:
        return GroupingQuality(since, until, merges, splits, len(labels.incomplete), None, [])
    starts = _group_starts(events)
    by_week: dict[date, list[LabeledEvent]] = defaultdict(list)
    for ev in events:
        by_week[week_of(starts[ev.event_id])].append(ev)
    weeks = []
    for week in sorted(by_week):
        held = by_week[week]
        by_version: dict[int, list[LabeledEvent]] = defaultdict(list)
        for ev in held:
            by_version[ev.parameters_version].append(ev)
        weeks.append(WeekScores(week, _scores(held),
                                [VersionScores(v, _scores(by_version[v])) for v in sorted(by_version)]))
    return GroupingQuality(since, until, merges, splits, len(labels.incomplete), _scores(events), weeks)
