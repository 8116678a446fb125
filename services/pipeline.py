"""One batch of events through correlation into the store: what the consumer's handler does.

The pipeline runs the batch top-down, in one transaction (the store's unit of work,
``triage.store.batch``):

    open the batch: lock its scopes, drop ids already stored     (store)
    the parameters in force, the state slice, the embeddings     (store, with what ScopeCache kept)
    decide every new event                                       (correlation)
    write the events, decisions and what they changed            (store)
    the service graph's edges, the pages owed                    (store, paging)
    commit; keep what the batch left                             (store, ScopeCache)

The store never calls back into the pipeline, and what lives from one batch to the next
(the kept incidents and models per scope, the correlator with its indexes) has one owner,
the pipeline's ``ScopeCache``, with one rule for when it may be used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from opentelemetry import trace

from triage.correlation import CorrelationState, Correlator, Decision
from triage.domain.event import Event, ServiceEdge
from triage.domain.scope import scope_of
from triage.domain.stages import Stage, StageClock
from triage.domain.wire import Prepared
from triage.models.alert_families import TemplateFamilies
from triage.models.embedder import Embedder
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph
from triage.paging.outbox import owe_pages
from triage.services.scope_cache import ScopeCache
from triage.services.telemetry import Metrics
from triage.store import BatchResult, SqlStore
from triage.store.graph import record_edges
from triage.store.parameters import DEFAULTS, ParameterStore, ParameterVersion
from triage.services.changes import BatchChanges, ChangeRecorder

tracer = trace.get_tracer(__name__)

class Pipeline:
    def __init__(self, store: SqlStore, embedder: Embedder, metrics: Metrics | None = None,
                 parameters: CorrelationParameters | None = None, parameters_version: int = 0,
                 page_targets: Sequence[str] = (),
                 families: Callable[[], TemplateFamilies | None] | None = None,
                 topology: ServiceGraph | None = None) -> None:
        self.store = store
        # The process's embedder (``triage.models.embedder.make_embedder``): every
        # correlator of this pipeline embeds templates with it.
        self.embedder = embedder
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
        self.cache = ScopeCache()
        self.changes = ChangeRecorder()
        self.stages = StageClock()   # CPU per stage of the batch (triage bench reads it)
        self._warm = False

    @property
    def parameters(self) -> CorrelationParameters:
        return self._in_force.parameters

    def __call__(self, events: Sequence[Event], edges: Sequence[ServiceEdge] = (),
                 prepared: Prepared | None = None) -> BatchResult:
        """``prepared``: the events' dedup keys and stored documents, made beforehand in the
        process that decoded them (``triage.correlator_process``)."""
        started = time.perf_counter()
        # Change records leave the batch here: a change never pages nor joins an incident.
        changes = self.changes.take(events)
        events = changes.events
        # Edges from spans the engine never sees as events (healthy ones) still shape the graph.
        observed = [(e.caller, e.callee, e.observed_at) for e in edges]
        observed += [(e.parent_service, e.service, e.occurred_at) for e in events
                     if e.parent_service and e.service]
        if events and not self._warm:
            # Loading the embedding model takes seconds: before the first batch takes its
            # locks, not inside its transaction where every other writer waits.
            self.embedder.warm()
            self._warm = True
        decided: list[Decision] = []
        with tracer.start_as_current_span("store.apply") as span:
            if events or observed or self.changes.to_write(changes):
                result, decided = self._run(events, edges, observed, changes, prepared)
                self.changes.committed(changes)
            else:
                result = BatchResult(0, 0, 0, 0, 0, 0)
            span.set_attribute("triage.events.stored", result.stored)
        if self.metrics:
            self.metrics.batch_stored(events, result, {d.event_id for d in decided}, time.perf_counter() - started)
        return result

    def _run(self, events: Sequence[Event], edges: Sequence[ServiceEdge],
             observed: list[tuple[str, str, datetime]],
             changes: BatchChanges, prepared: Prepared | None = None) -> tuple[BatchResult, list[Decision]]:
        """The batch's transaction, step by step; it commits where the ``with`` ends."""
        stages = self.stages
        since = stages.now()
        with self.store.batch(events, prepared=prepared) as batch:
            since = stages.add(Stage.dedup, since)
            # The batch's changes (stored once by id) and new service versions.
            self.changes.write(batch.conn, changes, batch.received_at)
            if not batch.new:   # a redelivered batch: its events are stored, and decided
                if not events:   # only healthy spans: nothing to decide, a graph to update
                    record_edges(batch.conn, observed)
                return batch.result([]), []
            assert batch.earliest is not None
            # The newest version was read in the batch's transaction, after it took its
            # scopes' locks: no extra connection per batch, and a change committed before
            # the lock is seen.
            self._in_force = self._fixed or self._versions.numbered(batch.newest_parameters)
            taken = self.cache.take(batch.revisions, batch.earliest, {scope_of(e) for e in batch.new})
            state = batch.load_state(taken.kept)
            batch.load_embeddings(self.embedder)
            _learn_calls(state, edges)
            correlator = self._correlator(taken.correlator, state)
            since = stages.add(Stage.state, since)
            with tracer.start_as_current_span("correlation.process_batch"), _premasked(state, prepared):
                decisions = correlator.process_batch(batch.new)
            since = stages.add(Stage.correlation, since)
            batch.write(decisions, state)
            batch.write_embeddings(self.embedder)
            record_edges(batch.conn, observed)
            if self.page_targets:
                owe_pages(batch.conn, decisions, state, self.page_targets, batch.received_at,
                          group_wait=self.parameters.group_wait, reopen_window=self.parameters.reopen_window)
        # Committed: what the batch left is now its scopes' current state.
        self.cache.keep(batch.revisions, batch.earliest, state, correlator)
        stages.add(Stage.store_writes, since)
        return batch.result(decisions), decisions

    def _correlator(self, kept: Correlator | None, state: CorrelationState) -> Correlator:
        """The last batch's correlator, its indexes kept, when the cache hands it back (every
        scope of the batch as it left them) and it decides with the parameters and families
        in force now; else a new one."""
        families = self.families() if self.families is not None else None
        version = self._in_force.version
        if kept is not None and kept.parameters_version == version and kept.parameters is self.parameters \
                and kept.families is families:
            kept.adopt(state)
            return kept
        return Correlator(self.parameters, parameters_version=version, state=state, embedder=self.embedder,
                          families=families, topology=self.topology)


@contextmanager
def _premasked(state: CorrelationState, prepared: Prepared | None) -> Iterator[None]:
    """The batch's masked texts, made where it was decoded, lent to its scopes' templaters
    while it is decided."""
    if prepared is None or not prepared.masked:
        yield
        return
    templaters = [models.templater for models in state.models.values()]
    for templater in templaters:
        templater.premasked = prepared.masked
    try:
        yield
    finally:
        for templater in templaters:
            templater.premasked = {}


def _learn_calls(state: CorrelationState, edges: Sequence[ServiceEdge]) -> None:
    """Calls seen in healthy spans (which are not events) teach the service graph too, in
    the same transaction as the batch they came with, so every consumer learns them at the
    same point of the stream."""
    for models in state.models.values():
        for edge in edges:
            if models.graph.learn_call(edge.caller, edge.callee, edge.observed_at.timestamp()):
                models.dirty = True
