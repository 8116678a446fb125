"""One batch of events through correlation into the store: what the consumer's handler does."""

from __future__ import annotations

import time
from collections.abc import Sequence

from opentelemetry import trace

from triage.correlation import CorrelationState, Correlator, Decision
from triage.ingest.event import Event
from triage.models.parameters import CorrelationParameters
from triage.store import BatchResult, SqlStore
from triage.telemetry import Metrics

tracer = trace.get_tracer(__name__)


class Pipeline:
    def __init__(self, store: SqlStore, metrics: Metrics | None = None,
                 parameters: CorrelationParameters | None = None, parameters_version: int = 0) -> None:
        self.store = store
        self.metrics = metrics
        self.parameters = parameters or CorrelationParameters()
        self.parameters_version = parameters_version

    def __call__(self, events: Sequence[Event]) -> BatchResult:
        started = time.perf_counter()
        with tracer.start_as_current_span("store.apply") as span:
            result = self.store.apply(events, self._correlate)
            span.set_attribute("triage.events.stored", result.stored)
        if self.metrics:
            m = self.metrics
            m.batch_seconds.observe(time.perf_counter() - started)
            m.batch_size.observe(len(events))
            m.events_stored.inc(result.stored)
            m.suppressed.inc(result.suppressed)
            m.incidents_opened.inc(result.opened)
            m.pages.inc(result.notified)
        return result

    def _correlate(self, events: list[Event], state: CorrelationState) -> list[Decision]:
        with tracer.start_as_current_span("correlation.process_batch"):
            correlator = Correlator(self.parameters, parameters_version=self.parameters_version, state=state)
            return correlator.process_batch(events)
