"""One batch of events through correlation into the store: what the consumer's handler does."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from opentelemetry import trace

from triage.correlation import CorrelationState, Correlator, Decision
from triage.correlation.evidence import Resolve
from triage.domain.scope import scope_of
from triage.domain.event import Event
from triage.domain.event import ServiceEdge
from triage.models.alert_families import TemplateFamilies
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph
from triage.store import BatchResult, SqlStore
from triage.store.graph import record_edges
from triage.paging.outbox import Owed, enqueue
from triage.store.parameters import DEFAULTS, ParameterStore, ParameterVersion
from triage.services.telemetry import Metrics
from triage.services.changes import ChangeRecorder

tracer = trace.get_tracer(__name__)


def pages_owed(decisions: list[Decision], state: CorrelationState) -> list[Owed]:
    """One trigger per incident whose page (or update) fell due in this batch, one resolve
    per paged incident that resolved in it. The correlator already applied
    Alertmanager's timers, so an incident gaining 500 alerts owes a handful, not 500."""
    owed: dict[tuple[str, str], Owed] = {}
    for d in decisions:
        if d.notify:
            owed.setdefault((d.incident_id, "trigger"), Owed(d.incident_id, "trigger", d.event_id))
        elif d.incident_resolved:
            incident = state.incidents.get(d.incident_id)
            if incident is not None and incident.last_notified_at is not None:
                owed.setdefault((d.incident_id, "resolve"), Owed(d.incident_id, "resolve", d.event_id))
    return list(owed.values())


class Pipeline:
    def __init__(self, store: SqlStore, metrics: Metrics | None = None,
                 parameters: CorrelationParameters | None = None, parameters_version: int = 0,
                 page_targets: Sequence[str] = (),
                 families: Callable[[], TemplateFamilies | None] | None = None,
                 topology: ServiceGraph | None = None) -> None:
        self.store = store
        # Declared service dependencies (TRIAGE_TOPOLOGY_FILE): each scope's graph takes
        # them in next to the calls it learns from traces.
        self.topology = topology
        # The newest fitted alert families (``triage.services.families_job.FamiliesCache``), or none.
        self.families = families
        self.metrics = metrics
        # Fixed parameters (tests, eval) or, by default, the newest version in the store,
        # read per batch: a change made through the API applies to the next batch of every
        # consumer, without a restart.
        self._fixed = ParameterVersion(parameters_version, parameters, "caller", "fixed", None) \
            if parameters is not None else None
        self._versions = ParameterStore(store.engine)
        self.page_targets = list(page_targets)
        self._in_force = self._fixed or DEFAULTS
        self._correlator: Correlator | None = None
        self.changes = ChangeRecorder()

    @property
    def parameters(self) -> CorrelationParameters:
        return self._in_force.parameters

    def __call__(self, events: Sequence[Event], edges: Sequence[ServiceEdge] = ()) -> BatchResult:
        started = time.perf_counter()
        # Change records leave the batch here: a change never pages nor joins an incident.
        changes = self.changes.take(events)
        events = changes.events
        # Edges from spans the engine never sees as events (healthy ones) still shape the graph.
        observed = [(e.caller, e.callee, e.observed_at) for e in edges]
        observed += [(e.parent_service, e.service, e.occurred_at) for e in events
                     if e.parent_service and e.service]

        decided: list[Decision] = []   # the batch's decisions, for the metrics once committed

        def after_write(conn: sa.Connection, decisions: list[Decision], state: CorrelationState,
                        now: datetime) -> None:
            decided.extend(decisions)
            record_edges(conn, observed)
            self.changes.write(conn, changes, now)
            if self.page_targets:
                self._owe_pages(conn, decisions, state, now)

        def in_force(conn: sa.Connection, newest: int) -> None:
            # ``newest`` was read in the batch's transaction, after it took its scopes'
            # locks: no extra connection per batch, and a change committed before the lock
            # is seen.
            self._in_force = self._fixed or self._versions.numbered(newest)

        with tracer.start_as_current_span("store.apply") as span:
            result = self.store.apply(events, lambda new, state: self._correlate(new, state, edges),
                                      after_write=after_write, before_correlate=in_force)
            if not events and observed:  # only healthy spans: nothing to correlate, a graph to update
                with self.store.ingest_transaction() as conn:
                    record_edges(conn, observed)
                    self.changes.write(conn, changes, datetime.now(timezone.utc))
            if not changes.written and self.changes.to_write(changes):   # no event of the batch was new
                with self.store.ingest_transaction() as conn:
                    self.changes.write(conn, changes, datetime.now(timezone.utc))
            self.changes.committed(changes)
            span.set_attribute("triage.events.stored", result.stored)
        if self.metrics:
            m = self.metrics
            m.batch_seconds.observe(time.perf_counter() - started)
            m.batch_size.observe(len(events))
            m.events_stored.inc(result.stored)
            m.suppressed.inc(result.suppressed)
            m.incidents_opened.inc(result.incidents_opened)
            m.noise_groups_opened.inc(result.noise_groups_opened)
            m.pages.inc(result.notified)
            # A decision that opens an incident and pages nobody yet: its first page waits
            # for auto_pause (without it, the first alert's page is due at once).
            m.pages_held.inc(sum(d.opens_incident and not d.notify for d in decided))
            m.pages_transient.inc(sum(isinstance(d.evidence, Resolve) and d.evidence.transient for d in decided))
            stored_at, new = time.time(), {d.event_id for d in decided}   # redeliveries were decided before
            for event in events:
                if event.id in new:
                    m.decision_delay.observe(max(0.0, stored_at - event.occurred_at.timestamp()))
        return result

    def _owe_pages(self, conn: sa.Connection, decisions: list[Decision], state: CorrelationState,
                   now: datetime) -> None:
        owed = pages_owed(decisions, state)
        # A new incident's first page waits group_wait, so that the alerts arriving with
        # it are in it; the page is composed when it is sent.
        enqueue(conn, [o for o in owed if o.action == "trigger"], self.page_targets,
                now + timedelta(seconds=self.parameters.group_wait))
        enqueue(conn, [o for o in owed if o.action == "resolve"], self.page_targets, now)

    def _correlate(self, events: list[Event], state: CorrelationState,
                   edges: Sequence[ServiceEdge] = ()) -> list[Decision]:
        # Calls seen in healthy spans (which are not events) teach the service graph too,
        # in the same transaction as the batch they came with, so every consumer learns
        # them at the same point of the stream.
        for models in state.models.values():
            for edge in edges:
                if models.graph.learn_call(edge.caller, edge.callee, edge.observed_at.timestamp()):
                    models.dirty = True
        with tracer.start_as_current_span("correlation.process_batch"):
            return self._correlator_for(events, state).process_batch(events)

    def _correlator_for(self, events: list[Event], state: CorrelationState) -> Correlator:
        """The last batch's correlator, its indexes kept, when nothing it learned from
        has changed since: the same parameters and families, and every scope of the batch
        this process's own since its last batch (the store says which, ``state.reused``);
        else a new one."""
        families = self.families() if self.families is not None else None
        kept, version = self._correlator, self._in_force.version
        if kept is not None and kept.parameters_version == version and kept.parameters is self.parameters \
                and kept.families is families and {scope_of(e) for e in events} <= state.reused:
            kept.adopt(state)
            return kept
        self._correlator = Correlator(self.parameters, parameters_version=version, state=state,
                                      families=families, topology=self.topology)
        return self._correlator
