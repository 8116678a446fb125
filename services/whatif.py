"""What a change of parameters would have done to a stored window, before it is applied.

The events that occurred in [since, until) are read from the store in time order, in
batches (``triage.store.replay_window``), and replayed offline twice, side by side, each
through a fresh correlator (``triage.services.offline_replay.Replay``: event time, the
pages the service would send): once with the parameters in force, once with the
candidate values. Nothing is written but template embeddings the model had to compute
(a cache of a pure function); the parameters in force change only through
``PUT /models/parameters``.

Both replays start from nothing at ``since``: no incident open before the window, the
template miner and the service graph learned afresh, except that the graph knows every
call the traces showed before each event (``service_edges``) and the declared topology.
So the replay with the values in force is the yardstick, not the store: over a window
that starts when nothing was open, with those values in force throughout, the two agree.

What each replay reports (``Run``): its pages, noise pages, incidents, noise groups,
compression (1 - incidents/events, as ``/stats/noise``), and, where responders corrected
incidents in the window, its grouping scored against theirs (``triage.services.quality``).
A *noise page* is a page of a group whose firing alerts were all transient: each resolved
within ``transient_s`` of firing (an alert's episode runs from its first firing to its
resolve, by the correlator's own identity, ``dedup_key``). Comparing the two groupings of
the same events names the incidents that would merge (several groups under the values in
force in one candidate group) and split (one group spread over several).

Memory: the events are never all held; per event only its group in each replay (in a
contingency table of the two), its alert episode, and, for corrected incidents, its
labels. The correlators hold the window's incidents, as a consumer would over that time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa

from triage.correlation.identity import dedup_key
from triage.correlation.state import IncidentKind
from triage.domain.event import EventKind, Status
from triage.models.embedder import Embedder
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph
from triage.services.offline_replay import KnownEdge, Replay
from triage.services.quality import Scores, score_grouping
from triage.store.grouping_labels import corrected_incidents
from triage.store.replay_window import cached_embeddings, count_window, save_embeddings, stream_window, traced_calls

__all__ = ["MAX_WINDOW", "Regrouped", "Run", "WhatIf", "WindowTooLarge", "what_if"]

MAX_WINDOW = timedelta(days=31)
DEFAULT_TRANSIENT_S = 300.0
BATCH = 2000
# Entries listed per kind of regrouping (the counts cover them all).
MAX_LISTED = 200


class WindowTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class Run:
    """One replay of the window."""

    parameters: CorrelationParameters
    pages: int                    # pages the page target received: first pages, and the first after a resolve
    pages_due: int                # decisions that made a page or page update due (``/stats/noise``'s pages)
    noise_pages: int              # pages of groups whose firing alerts were all transient
    incidents: int                # groups a firing alert is in (they page)
    noise_groups: int             # groups of logs and spans no alert joined (they page nobody)
    transient_incidents: int      # incidents auto_pause kept from paging: their alerts resolved in the pause
    compression: float            # 1 - incidents / events
    feedback: Scores | None       # its grouping against the responders', where they corrected it


@dataclass(frozen=True)
class Regrouped:
    """Events grouped one way with the values in force, another with the candidate values."""

    current: tuple[str, ...]      # their groups with the values in force (incident ids as the replay opened them)
    candidate: tuple[str, ...]    # their groups with the candidate values
    stored: tuple[str, ...]       # the stored incidents that hold those events now
    events: int


@dataclass(frozen=True)
class WhatIf:
    since: datetime
    until: datetime
    events: int
    current: Run
    candidate: Run
    merges: list[Regrouped]       # candidate groups holding events of several current groups, most events first
    splits: list[Regrouped]       # current groups whose events the candidate spreads over several
    merges_total: int
    splits_total: int
    feedback_events: int          # events of incidents responders merged or split
    transient_s: float
    embedded: int                 # template texts the model had to embed (the others were cached)
    seconds: float                # the replays (reading, deciding, comparing)
    setup_seconds: float          # before: the embedder's libraries and the cached vectors loaded


class _Recording:
    """The embedder, noting which texts had to go to the model (to store them after)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.computed: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.computed.extend(t for t in dict.fromkeys(texts) if self.inner.cached(t) is None)
        return self.inner.embed(texts)

    def cached(self, text: str) -> np.ndarray | None:
        return self.inner.cached(text)

    def put(self, text: str, vector: np.ndarray) -> None:
        self.inner.put(text, vector)

    def items(self) -> list[tuple[str, np.ndarray]]:
        return self.inner.items()

    def warm(self) -> None:
        self.inner.warm()

    def __len__(self) -> int:
        return len(self.inner)


@dataclass
class _Tally:
    """What one replay's decisions add up to, per group."""

    replay: Replay
    episodes: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))   # group -> alert episodes
    labeled: list[str] = field(default_factory=list)                                  # groups of labeled events
    pages_due: int = 0


class _Episodes:
    """Alert episodes by the correlator's identity: from a firing to its resolve."""

    def __init__(self, transient_s: float) -> None:
        self.transient_s = transient_s
        self.open: dict[str, tuple[int, datetime]] = {}
        self.transient: set[int] = set()
        self.count = 0

    def of(self, key: str, firing: bool, at: datetime) -> int | None:
        """The episode a firing alert belongs to; a resolve closes its episode (None)."""
        current = self.open.get(key)
        if firing:
            if current is None:
                self.count += 1
                current = self.open[key] = (self.count, at)
            return current[0]
        if current is not None:
            del self.open[key]
            if (at - current[1]).total_seconds() <= self.transient_s:
                self.transient.add(current[0])
        return None


def _run(tally: _Tally, events: int, transient: set[int], truth: list[str]) -> Run:
    replay = tally.replay
    kinds = Counter(i.kind for i in replay.incidents.values())
    noise_pages = sum(1 for page in replay.pages
                      if (held := tally.episodes.get(page.group)) and held <= transient)
    return Run(parameters=replay.correlator.parameters, pages=len(replay.pages), pages_due=tally.pages_due,
               noise_pages=noise_pages,
               incidents=kinds[IncidentKind.incident], noise_groups=kinds[IncidentKind.noise],
               transient_incidents=sum(1 for i in replay.incidents.values() if i.transient),
               compression=1.0 - kinds[IncidentKind.incident] / events if events else 0.0,
               feedback=score_grouping(truth, tally.labeled) if truth else None)


def _regroupings(cells: Counter[tuple[str, str]], stored: Counter[tuple[str, str]]) -> tuple[list[Regrouped], list[Regrouped]]:
    home: dict[str, tuple[int, str]] = {}   # current group -> (events, stored incident) holding most of them
    for (group, incident), n in stored.items():
        best = home.get(group)
        if best is None or n > best[0] or (n == best[0] and incident < best[1]):
            home[group] = (n, incident)
    by_candidate: dict[str, dict[str, int]] = defaultdict(dict)
    by_current: dict[str, dict[str, int]] = defaultdict(dict)
    for (current, candidate), n in cells.items():
        by_candidate[candidate][current] = n
        by_current[current][candidate] = n

    def stored_of(groups: Sequence[str]) -> tuple[str, ...]:
        return tuple(sorted({home[g][1] for g in groups if g in home}))

    merges = [Regrouped(tuple(sorted(parts)), (candidate,), stored_of(list(parts)), sum(parts.values()))
              for candidate, parts in by_candidate.items() if len(parts) > 1]
    splits = [Regrouped((current,), tuple(sorted(parts)), stored_of([current]), sum(parts.values()))
              for current, parts in by_current.items() if len(parts) > 1]
    order = lambda r: (-r.events, r.current, r.candidate)   # noqa: E731
    return sorted(merges, key=order), sorted(splits, key=order)


def what_if(engine: sa.Engine, candidate: CorrelationParameters, current: CorrelationParameters,
            since: datetime, until: datetime, *, transient_s: float = DEFAULT_TRANSIENT_S,
            topology: Callable[[], ServiceGraph] | None = None, embedder: Embedder,
            max_events: int | None = None, batch: int = BATCH,
            progress: Callable[[int], None] | None = None) -> WhatIf:
    """Replay the window's stored events with ``current`` and ``candidate`` side by side.

    ``topology`` makes a fresh declared service graph per replay (``TRIAGE_TOPOLOGY_FILE``).
    ``progress`` is told how many events each batch held. A window longer than
    ``MAX_WINDOW``, or holding more than ``max_events``, raises ``WindowTooLarge``."""
    if until <= since:
        raise ValueError("since must be before until")
    if until - since > MAX_WINDOW:
        raise WindowTooLarge(f"the window spans {until - since}; at most {MAX_WINDOW.days} days")
    if max_events is not None and (count := count_window(engine, since, until)) > max_events:
        raise WindowTooLarge(f"{count} events in the window; at most {max_events} here: "
                             "pick a shorter window, or run `triage whatif`")
    started = time.perf_counter()
    recording = _Recording(embedder)
    cached_embeddings(engine, recording.inner)
    ready = time.perf_counter()
    edges = [KnownEdge(at, caller, callee) for at, caller, callee in traced_calls(engine, until)]
    with engine.connect() as conn:
        corrected = corrected_incidents(conn)
    tallies = [_Tally(Replay(parameters, topology=topology() if topology else None, embedder=recording,
                             edges=edges)) for parameters in (current, candidate)]
    episodes = _Episodes(transient_s)
    cells: Counter[tuple[str, str]] = Counter()
    stored: Counter[tuple[str, str]] = Counter()
    truth: list[str] = []
    count = 0
    for rows in stream_window(engine, since, until, batch):
        events = [r.event for r in rows]
        decided = [tally.replay.feed(events) for tally in tallies]
        for tally, decisions in zip(tallies, decided, strict=True):
            tally.pages_due += sum(d.notify for d in decisions)
        for row, now, next_ in zip(rows, decided[0], decided[1], strict=True):
            event, groups = row.event, (now.incident_id, next_.incident_id)
            cells[groups] += 1
            if row.incident_id is not None:
                stored[(groups[0], row.incident_id)] += 1
                if row.incident_id in corrected:
                    truth.append(row.incident_id)
                    for tally, group in zip(tallies, groups, strict=True):
                        tally.labeled.append(group)
            if event.kind is EventKind.alert:
                episode = episodes.of(dedup_key(event), event.status is Status.firing, event.occurred_at)
                if episode is not None:
                    for tally, group in zip(tallies, groups, strict=True):
                        tally.episodes[group].add(episode)
        count += len(rows)
        if progress is not None:
            progress(len(rows))
    for tally in tallies:
        tally.replay.finish()
    if recording.computed:
        save_embeddings(engine, recording.inner, recording.computed)
    merges, splits = _regroupings(cells, stored)
    return WhatIf(since=since, until=until, events=count,
                  current=_run(tallies[0], count, episodes.transient, truth),
                  candidate=_run(tallies[1], count, episodes.transient, truth),
                  merges=merges[:MAX_LISTED], splits=splits[:MAX_LISTED], merges_total=len(merges),
                  splits_total=len(splits), feedback_events=len(truth), transient_s=transient_s,
                  embedded=len(set(recording.computed)), seconds=time.perf_counter() - ready,
                  setup_seconds=ready - started)


# One preview at a time per process: each holds two correlators and a core.
PREVIEW_LOCK = threading.Lock()
