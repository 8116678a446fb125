"""triage traces itself: one span per pipeline stage."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import EMBEDDER, make_event
from triage.services.pipeline import Pipeline
from triage.settings import Settings
from triage.store import SqlStore
from triage.service import configure_tracing
from triage.services.telemetry import Metrics

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)  # once per process: later calls are ignored by the API
    return _EXPORTER


def test_pipeline_stages_are_spans_and_metrics_count(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 't.db'}")
    metrics = Metrics()
    Pipeline(store, EMBEDDER, metrics)([make_event(0, id="a", fingerprint="f"), make_event(5, id="b", fingerprint="f")])
    names = [s.name for s in spans.get_finished_spans()]
    assert "store.apply" in names and "correlation.process_batch" in names
    apply_span = next(s for s in spans.get_finished_spans() if s.name == "store.apply")
    assert apply_span.attributes is not None and apply_span.attributes["triage.events.stored"] == 2
    assert metrics.suppressed._value.get() == 1  # type: ignore[attr-defined]
    store.close()


def test_exporter_is_chosen_by_settings() -> None:
    configure_tracing(Settings(otel_exporter="none"))  # installs nothing, raises nothing
    with pytest.raises(ValidationError, match="otel_exporter"):
        Settings(otel_exporter="zipkin")  # type: ignore[arg-type]


def test_the_consumer_observer_counts_by_reason_and_reports_a_stall_to_readiness() -> None:
    from prometheus_client import generate_latest

    from triage.ingest.kafka import DeadLetterReason, RetryCause

    metrics = Metrics()
    metrics.message_dead_lettered("alerts", DeadLetterReason.validation)
    metrics.message_dead_lettered("alerts", DeadLetterReason.validation)
    metrics.message_dead_lettered("logs", DeadLetterReason.failed_alone)
    metrics.batch_retried(RetryCause.unavailable)
    metrics.stalled("a batch cannot be stored (store_unavailable), retrying: StoreUnavailable: down")
    text = generate_latest(metrics.registry).decode()
    assert 'triage_events_dead_lettered_total{reason="validation",topic="alerts"} 2.0' in text
    assert 'triage_events_dead_lettered_total{reason="failed_alone",topic="logs"} 1.0' in text
    assert 'triage_consumer_batch_retries_total{cause="store_unavailable"} 1.0' in text
    assert 'triage_component_up{component="consumer"} 0.0' in text
    (consumer,) = metrics.health.states()
    assert not consumer.ok and "StoreUnavailable: down" in consumer.reason
    metrics.flowing()
    assert metrics.health.states()[0].ok
