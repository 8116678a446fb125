"""OTLP on the logs and traces topics, encoded by the real opentelemetry-sdk exporters'
protobuf encoder, as the OpenTelemetry Collector's Kafka exporter writes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format

from tests.integration.kafka_helpers import running, produce, wait_for
from tests.unit.test_otlp import sdk_log_request, sdk_logs, sdk_trace_request  # noqa: F401 - a fixture
from triage.broker import EmbeddedBroker
from triage.domain.event import EventKind
from triage.service import Runtime
from triage.store import IncidentQuery
from triage.store.graph import load_edges

pytestmark = pytest.mark.integration


@pytest.fixture
def runtime(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Runtime]:
    with running(broker.bootstrap_servers, tmp_path / "o.db", api=False) as rt:
        yield rt


def test_otlp_logs_and_spans_become_events_and_service_edges(runtime: Runtime, broker: EmbeddedBroker,
                                                             sdk_logs: object) -> None:
    s = runtime.settings
    logs = sdk_log_request(*sdk_logs)  # type: ignore[misc]
    traces = sdk_trace_request(error=True)
    produce(broker.bootstrap_servers, s.topic_logs, [logs.SerializeToString()])
    produce(broker.bootstrap_servers, s.topic_traces, [
        traces.SerializeToString(),                                   # otlp_proto, the default
        json_format.MessageToJson(sdk_trace_request(error=False)).encode(),  # otlp_json
    ])
    expected_logs = sum(len(sl.log_records) for rl in logs.resource_logs for sl in rl.scope_logs)
    wait_for(lambda: runtime.store.count_events() >= expected_logs + 1, 30, "the OTLP events")
    stored = runtime.store.noise_stats().by_source
    assert stored["otel"].events == expected_logs + 1  # the healthy trace adds no event
    edges = {(e.caller, e.callee) for e in load_edges(runtime.store.engine)}
    assert ("frontend", "checkoutservice") in edges
    assert runtime.consumer is not None and runtime.consumer.totals.dead_lettered == 0
    [incident] = runtime.store.list_incidents(IncidentQuery(service="checkoutservice")).items
    [span] = [e.event for e in runtime.store.incident_events(incident.id) if e.event.kind is EventKind.span]
    assert span.parent_service == "frontend"
