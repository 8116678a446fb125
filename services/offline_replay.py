"""Events replayed offline through a fresh correlator, with the pages the service would send.

What ``triage eval alerts`` scores triage by, and what the what-if (``services/whatif.py``)
compares parameter values with: a ``Correlator`` of its own (nothing shared with the
consumers, nothing written), fed events in (occurred_at, id) order, each decided at its
own time, batch after batch, so a replay of a stored window can stream it. Templates are
learned per batch in that order before the batch's new templates are embedded in one
call, as ``Correlator.process_batch`` does, so the decisions do not depend on where the
batches are cut.

Pages are owed as ``triage.services.pipeline.pages_owed`` owes them, one event per batch,
and go out ``group_wait`` after the decision (the outbox's due time). A first page held
by ``auto_pause`` is sent at its ``page_due_at`` if the incident is still open and
unpaged then, as the consumers' ticker does (``triage.paging.held_pages``), with no lag
and no tick interval: before each event the ticker runs at that event's time, and once
more at the end (``finish``). Resolves wait ``reopen_window``, as in the outbox, and go
out only if the incident is still resolved then (a flapping alert that re-fires into it
keeps its page open instead of opening a new one). The page target is ``PageTarget``, a PagerDuty-like
receiver.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from triage.correlation.correlator import Correlator
from triage.correlation.decision import Decision
from triage.correlation.state import IncidentKind, IncidentState
from triage.domain.event import Event
from triage.domain.scope import scope_of
from triage.models.embedder import Embedder
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph
from triage.paging.outbox import pages_owed

__all__ = ["KnownEdge", "PageTarget", "Replay", "SentPage"]


@dataclass(frozen=True)
class SentPage:
    """A page as the page target sees it: for which group, and when it went out."""

    group: str
    at: datetime


@dataclass(frozen=True)
class KnownEdge:
    """A call the traces showed from ``first_seen`` on (``store/graph.py``'s
    ``service_edges``): healthy spans are never stored as events, yet they taught the
    consumers' service graph."""

    first_seen: datetime
    caller: str
    callee: str


class PageTarget:
    """A PagerDuty-like receiver: one alert per incident (dedup_key = incident id). A
    trigger while that alert is open updates it and pages nobody; the first trigger, and
    the first after a resolve, open it and page someone."""

    def __init__(self) -> None:
        self.open: set[str] = set()
        self.pages: list[SentPage] = []

    def trigger(self, incident_id: str, at: datetime) -> None:
        if incident_id not in self.open:
            self.open.add(incident_id)
            self.pages.append(SentPage(incident_id, at))

    def resolve(self, incident_id: str) -> None:
        self.open.discard(incident_id)


def held(incident: IncidentState) -> bool:
    """Its first page is held by auto-pause and still owed (``triage.paging.held_pages``' rule)."""
    return (incident.page_due_at is not None and incident.last_notified_at is None
            and incident.is_open and incident.kind == IncidentKind.incident)


class Replay:
    """One stream of events through one fresh correlator, and the pages it sends.

    ``feed`` takes the stream in order, in as many calls as the caller likes (each call's
    events must come after the previous call's); ``finish`` sends what the ticker would
    still send. ``topology``: a declared service graph, as a deployment that declares its
    dependencies runs. ``edges``: calls the traces showed, each taught to an event's scope
    before the first event that occurred after it was first seen."""

    def __init__(self, parameters: CorrelationParameters | None = None, *, embedder: Embedder,
                 topology: ServiceGraph | None = None, edges: Sequence[KnownEdge] = ()) -> None:
        self.correlator = Correlator(parameters, topology=topology, embedder=embedder)
        self.target = PageTarget()
        self._group_wait = timedelta(seconds=self.correlator.parameters.group_wait)
        self._held: list[tuple[datetime, str]] = []   # (page_due_at, incident id), a heap
        self._resolves: list[tuple[datetime, str]] = []   # (due, incident id): resolves held for reopen_window
        self._reopen = timedelta(seconds=self.correlator.parameters.reopen_window)
        self._edges = sorted(edges, key=lambda e: (e.first_seen, e.caller, e.callee))
        self._taught: dict[str, int] = {}   # scope -> how many of ``_edges`` it has learned
        self._last: tuple[datetime, str] | None = None

    @property
    def pages(self) -> list[SentPage]:
        return self.target.pages

    @property
    def incidents(self) -> dict[str, IncidentState]:
        return self.correlator.state.incidents

    def feed(self, events: Sequence[Event]) -> list[Decision]:
        """Decide ``events`` (in (occurred_at, id) order, after any fed before); one
        decision per event, in that order."""
        if not events:
            return []
        first = (events[0].occurred_at, events[0].id)
        if self._last is not None and first <= self._last:
            raise ValueError(f"events must come in (occurred_at, id) order: {first[1]!r} after {self._last[1]!r}")
        correlator = self.correlator
        correlator.prepare(events)
        incidents = correlator.state.incidents
        decisions = []
        for event in events:
            now = event.occurred_at
            self._tick(now)
            if self._edges:
                self._teach(event)
            decision = correlator.process(event, now=now)
            decisions.append(decision)
            for owed in pages_owed([decision], correlator.state):
                if owed.action == "trigger":
                    self.target.trigger(owed.incident_id, now + self._group_wait)
                else:
                    heapq.heappush(self._resolves, (now + self._reopen, owed.incident_id))
            incident = incidents[decision.incident_id]
            if held(incident):
                assert incident.page_due_at is not None
                heapq.heappush(self._held, (incident.page_due_at, incident.id))
        self._last = (events[-1].occurred_at, events[-1].id)
        return decisions

    def finish(self) -> None:
        """Past the stream's end the ticker still sends what is held."""
        self._tick(None)

    def _tick(self, now: datetime | None) -> None:
        incidents = self.correlator.state.incidents
        while self._resolves and (now is None or self._resolves[0][0] <= now):
            _, incident_id = heapq.heappop(self._resolves)
            if not incidents[incident_id].is_open:   # else it re-opened: its page stays open
                self.target.resolve(incident_id)
        while self._held and (now is None or self._held[0][0] <= now):
            due, incident_id = heapq.heappop(self._held)
            incident = incidents[incident_id]
            # An entry is stale when the incident paged meanwhile, or resolved
            # (transient) and re-paused with another due time.
            if held(incident) and incident.page_due_at == due:
                incident.last_notified_at = due
                self.target.trigger(incident_id, due)

    def _teach(self, event: Event) -> None:
        scope = scope_of(event)
        start = self._taught.get(scope, 0)
        end = start
        while end < len(self._edges) and self._edges[end].first_seen < event.occurred_at:
            end += 1
        if end > start:
            graph = self.correlator.state.models_for(scope).graph
            for edge in self._edges[start:end]:
                graph.learn_call(edge.caller, edge.callee, edge.first_seen.timestamp())
            self._taught[scope] = end
