"""OTLP logs and traces, built with the real SDK and encoded exactly as the OTLP exporters do."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber as ApiSeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace import Status as ApiStatus

from triage.domain.errors import DecodeError, InvalidEvent, NotJSON
from triage.domain.event import EventKind, ServiceEdge, Severity
from triage.ingest.otlp import (
    NotOTLP,
    OtlpEncoding,
    decode_kafka_value,
    decode_otlp_logs,
    decode_otlp_traces,
)

T0_NS = 1_773_237_600_000_000_000  # 2026-03-11T14:00:00Z
T0 = datetime(2026, 3, 11, 14, 0, tzinfo=timezone.utc)


def collector_json(message: Any) -> bytes:
    """OTLP JSON as the Collector's otlp_json encoding writes it: hex ids, integer enums."""
    doc = json_format.MessageToDict(message, use_integers_for_enums=True)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
    return json.dumps(doc).encode()


def canonical_json(message: Any) -> bytes:
    """protobuf's own JSON mapping (base64 ids, enum names), as some exporters send it."""
    return json_format.MessageToJson(message).encode()


ENCODINGS = ["proto", "collector_json", "canonical_json"]


def encoded(message: Any, how: str) -> tuple[bytes, OtlpEncoding]:
    if how == "proto":
        return message.SerializeToString(), "otlp_proto"
    return (collector_json(message) if how == "collector_json" else canonical_json(message)), "otlp_json"


# --------------------------------------------------------------------------- logs from the SDK


@pytest.fixture
def sdk_logs() -> Iterator[tuple[LoggerProvider, InMemoryLogRecordExporter, TracerProvider]]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({
        "service.name": "cartservice", "host.name": "gke-pool-7fa6b11a-qpxj", "k8s.pod.name": "cart-6b822",
        "process.command_args": ["cart", "--port", "7070"]}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "cartservice"}))
    yield provider, exporter, tracer_provider
    provider.shutdown()
    tracer_provider.shutdown()


def sdk_log_request(provider: LoggerProvider, exporter: InMemoryLogRecordExporter,
                    tracer_provider: TracerProvider) -> ExportLogsServiceRequest:
    logger = provider.get_logger("cart.server")
    with tracer_provider.get_tracer("t").start_as_current_span("GetCart"):
        logger.emit(timestamp=T0_NS, severity_number=ApiSeverityNumber.ERROR, severity_text="ERROR",
                    body="rpc error: code = Unavailable desc = redis down\n  at CartStore.get()",
                    attributes={"http.status_code": 503, "retry": True, "latency": 1.5, "tags": ["a", "b"]})
    logger.emit(timestamp=T0_NS + 1_000_000_000, severity_text="warn", body="cache miss ratio high")
    logger.emit(timestamp=T0_NS + 2_000_000_000, body={"msg": "structured", "user": 42})
    logger.emit(body="no timestamp, only observed time")
    request: ExportLogsServiceRequest = encode_logs(exporter.get_finished_logs())
    return request


@pytest.mark.parametrize("how", ENCODINGS)
def test_sdk_logs_decode_in_every_encoding(sdk_logs: Any, how: str) -> None:
    request = sdk_log_request(*sdk_logs)
    value, encoding = encoded(request, how)
    err, warn, structured, observed = decode_otlp_logs(value, encoding)

    assert err.kind is EventKind.log and err.source == "otel"
    assert err.service == "cartservice" and err.host == "gke-pool-7fa6b11a-qpxj"
    assert err.severity is Severity.error and err.severity_raw == "ERROR"
    assert err.title == "rpc error: code = Unavailable desc = redis down"
    assert err.body.endswith("at CartStore.get()")
    assert err.occurred_at == T0
    assert err.labels["http.status_code"] == 503 and err.labels["retry"] is True
    assert err.labels["latency"] == 1.5 and err.labels["k8s.pod.name"] == "cart-6b822"
    assert "tags" not in err.labels and "process.command_args" not in err.labels  # arrays are not labels
    assert err.labels["otel.scope.name"] == "cart.server"
    assert err.trace_id is not None and len(err.trace_id) == 32 and err.span_id is not None
    assert len(err.span_id) == 16

    assert warn.severity is Severity.warning and warn.severity_raw == "warn" and warn.trace_id is None
    assert structured.severity is Severity.info and structured.labels["triage.severity_defaulted"] is True
    assert json.loads(structured.body) == {"msg": "structured", "user": 42}
    assert observed.occurred_at > T0  # falls back to observed_time_unix_nano


def test_log_ids_are_deterministic_across_encodings(sdk_logs: Any) -> None:
    request = sdk_log_request(*sdk_logs)
    ids = {how: [e.id for e in decode_otlp_logs(*encoded(request, how))] for how in ENCODINGS}
    assert ids["proto"] == ids["collector_json"] == ids["canonical_json"]
    assert len(set(ids["proto"])) == 4
    # Trace ids are hex whatever the JSON flavour.
    proto_events = decode_otlp_logs(request.SerializeToString(), "otlp_proto")
    json_events = decode_otlp_logs(collector_json(request), "otlp_json")
    assert [e.trace_id for e in proto_events] == [e.trace_id for e in json_events]


# --------------------------------------------------------------------------- hand-built logs


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def _log_request(*records: LogRecord, resource: dict[str, str] | None = None) -> ExportLogsServiceRequest:
    resource = {"service.name": "api"} if resource is None else resource
    attrs = [_kv(k, AnyValue(string_value=v)) for k, v in resource.items()]
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=PbResource(attributes=attrs), scope_logs=[ScopeLogs(log_records=list(records))])])


def test_severity_number_wins_over_text_and_nested_maps_flatten() -> None:
    record = LogRecord(
        time_unix_nano=T0_NS, severity_number=SeverityNumber.SEVERITY_NUMBER_FATAL, severity_text="whatever",
        body=AnyValue(string_value="\n\n  disk on fire  \nmore"),
        attributes=[_kv("http", AnyValue(kvlist_value=KeyValueList(values=[
            _kv("method", AnyValue(string_value="GET")), _kv("status", AnyValue(int_value=500))]))),
            _kv("ids", AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)]))),
            _kv("blob", AnyValue(bytes_value=b"\x00\x01"))])
    (event,) = decode_otlp_logs(_log_request(record, resource={"service.name": "api", "k8s.node.name": "n1"})
                                .SerializeToString(), "otlp_proto")
    assert event.severity is Severity.critical and event.severity_raw == "whatever"
    assert event.title == "disk on fire" and event.host == "n1"
    assert event.labels["http.method"] == "GET" and event.labels["http.status"] == 500
    assert "ids" not in event.labels and "blob" not in event.labels

    (numbered,) = decode_otlp_logs(_log_request(LogRecord(
        time_unix_nano=T0_NS, severity_number=SeverityNumber.SEVERITY_NUMBER_WARN2,
        body=AnyValue(string_value="x"))).SerializeToString(), "otlp_proto")
    assert numbered.severity is Severity.warning and numbered.severity_raw == "SEVERITY_NUMBER_WARN2"


def test_unknown_severity_text_is_rejected_naming_the_record() -> None:
    request = _log_request(LogRecord(time_unix_nano=T0_NS, body=AnyValue(string_value="ok")),
                           LogRecord(time_unix_nano=T0_NS, severity_text="spicy", body=AnyValue(string_value="x")))
    with pytest.raises(InvalidEvent) as exc:
        decode_otlp_logs(request.SerializeToString(), "otlp_proto")
    assert exc.value.field == "resourceLogs[0].scopeLogs[0].logRecords[1].severityText"
    assert "spicy" in exc.value.reason


def test_record_without_any_time_is_rejected() -> None:
    with pytest.raises(InvalidEvent) as exc:
        decode_otlp_logs(_log_request(LogRecord(body=AnyValue(string_value="x"))).SerializeToString(), "otlp_proto")
    assert exc.value.field is not None and exc.value.field.endswith("timeUnixNano")


def test_empty_body_and_missing_service() -> None:
    (event,) = decode_otlp_logs(_log_request(LogRecord(time_unix_nano=T0_NS, event_name="session.start"),
                                             resource={}).SerializeToString(), "otlp_proto")
    assert event.title == "session.start" and event.body == "" and event.service is None


@pytest.mark.parametrize("body,title", [
    (AnyValue(string_value='{"level": 50, "msg": "panic: nil pointer dereference", "pid": 1}'),
     "panic: nil pointer dereference"),
    (AnyValue(string_value='{"error": "rpc error: code = DeadlineExceeded", "message": "request error"}'),
     "rpc error: code = DeadlineExceeded"),
    (AnyValue(kvlist_value=KeyValueList(values=[_kv("message", AnyValue(string_value="payment declined"))])),
     "payment declined"),
    (AnyValue(string_value='{"no": "message key"}'), '{"no": "message key"}'),
    (AnyValue(string_value="{not json at all"), "{not json at all"),
])
def test_structured_bodies_title_from_their_message(body: AnyValue, title: str) -> None:
    (event,) = decode_otlp_logs(_log_request(LogRecord(time_unix_nano=T0_NS, body=body)).SerializeToString(),
                                "otlp_proto")
    assert event.title == title


def test_pre_1_0_otlp_json_is_rejected_not_dropped() -> None:
    value = json.dumps({"resourceLogs": [{"instrumentationLibraryLogs": [{"logs": [{"body": {}}]}]}]}).encode()
    with pytest.raises(InvalidEvent, match="pre-1.0") as exc:
        decode_otlp_logs(value, "otlp_json")
    assert exc.value.field == "resourceLogs[0].instrumentationLibraryLogs"


def test_long_first_line_is_truncated_in_the_title_only() -> None:
    text = "x" * 2000
    (event,) = decode_otlp_logs(_log_request(LogRecord(time_unix_nano=T0_NS, body=AnyValue(string_value=text)))
                                .SerializeToString(), "otlp_proto")
    assert len(event.title) == 500 and event.title.endswith("…") and event.body == text


# --------------------------------------------------------------------------- traces from the SDK


def sdk_trace_request(error: bool = True) -> ExportTraceServiceRequest:
    """frontend SERVER -> frontend CLIENT -> checkout SERVER -> checkout INTERNAL (fails) -> payment."""
    exporter = InMemorySpanExporter()
    providers = {name: TracerProvider(resource=Resource.create({"service.name": name, **extra}))
                 for name, extra in (("frontend", {"host.name": "node-a"}),
                                     ("checkoutservice", {"k8s.node.name": "node-b"}),
                                     ("paymentservice", {}))}
    for p in providers.values():
        p.add_span_processor(SimpleSpanProcessor(exporter))
    frontend = providers["frontend"].get_tracer("frontend")
    checkout = providers["checkoutservice"].get_tracer("checkout")
    payment = providers["paymentservice"].get_tracer("payment")
    with frontend.start_as_current_span("GET /cart/checkout", kind=SpanKind.SERVER):
        with frontend.start_as_current_span("hipstershop.CheckoutService/PlaceOrder", kind=SpanKind.CLIENT) as call:
            remote = trace.set_span_in_context(call)
            with checkout.start_as_current_span("hipstershop.CheckoutService/PlaceOrder", kind=SpanKind.SERVER,
                                                context=remote):
                with checkout.start_as_current_span("chargeCard", attributes={"rpc.system": "grpc"}) as inner:
                    with payment.start_as_current_span("hipstershop.PaymentService/Charge", kind=SpanKind.SERVER):
                        pass
                    if error:
                        inner.set_status(ApiStatus(StatusCode.ERROR, "DEADLINE_EXCEEDED: context deadline"))
    for p in providers.values():
        p.shutdown()
    request: ExportTraceServiceRequest = encode_spans(exporter.get_finished_spans())
    return request


@pytest.mark.parametrize("how", ENCODINGS)
def test_sdk_traces_yield_error_events_and_edges(how: str) -> None:
    request = sdk_trace_request()
    value, encoding = encoded(request, how)
    events, edges = decode_otlp_traces(value, encoding)

    (event,) = events  # only the failed span
    assert event.kind is EventKind.span and event.severity is Severity.error and event.source == "otel"
    assert event.service == "checkoutservice" and event.host == "node-b"
    assert event.title == "chargeCard"
    assert event.body == "chargeCard failed: DEADLINE_EXCEEDED: context deadline"
    assert event.parent_service == "frontend"  # the nearest ancestor in another service
    assert event.labels["rpc.system"] == "grpc" and event.labels["span.kind"] == "INTERNAL"
    assert isinstance(event.labels["duration_ms"], float)
    assert event.trace_id is not None and len(event.trace_id) == 32
    assert event.id == f"otel-span-{event.trace_id}-{event.span_id}"

    assert {(e.caller, e.callee) for e in edges} == {("frontend", "checkoutservice"),
                                                    ("checkoutservice", "paymentservice")}
    assert all(isinstance(e, ServiceEdge) and e.observed_at.tzinfo is not None for e in edges)


def test_spans_that_did_not_fail_make_edges_but_no_events() -> None:
    events, edges = decode_otlp_traces(sdk_trace_request(error=False).SerializeToString(), "otlp_proto")
    assert events == [] and len(edges) == 2


def test_span_ids_are_stable_for_redelivery() -> None:
    request = sdk_trace_request()
    first, _ = decode_otlp_traces(request.SerializeToString(), "otlp_proto")
    again, _ = decode_otlp_traces(collector_json(request), "otlp_json")
    assert [e.id for e in first] == [e.id for e in again]


# --------------------------------------------------------------------------- hand-built traces


def _span(trace_id: bytes, span_id: bytes, parent: bytes = b"", *, error: bool = False, name: str = "op",
          kind: Span.SpanKind.ValueType = Span.SpanKind.SPAN_KIND_SERVER, end: int = T0_NS + 5_000_000) -> Span:
    return Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name, kind=kind,
                start_time_unix_nano=T0_NS, end_time_unix_nano=end,
                status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK))


def _trace_request(*groups: tuple[str, list[Span]]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=PbResource(attributes=[_kv("service.name", AnyValue(string_value=service))]),
        scope_spans=[ScopeSpans(spans=spans)]) for service, spans in groups])


def test_parent_outside_the_request_yields_no_edge_and_edges_dedupe() -> None:
    tid = bytes(range(16))
    later = T0_NS + 9_000_000_000
    request = _trace_request(
        ("frontend", [_span(tid, b"\x01" * 8, kind=Span.SpanKind.SPAN_KIND_CLIENT),
                      _span(tid, b"\x04" * 8, kind=Span.SpanKind.SPAN_KIND_CLIENT)]),
        ("cart", [_span(tid, b"\x02" * 8, b"\x01" * 8), _span(tid, b"\x05" * 8, b"\x04" * 8, end=later),
                  _span(tid, b"\x03" * 8, b"\xff" * 8, error=True)]),
    )
    events, edges = decode_otlp_traces(request.SerializeToString(), "otlp_proto")
    assert edges == [ServiceEdge("frontend", "cart", datetime.fromtimestamp(later / 1e9, tz=timezone.utc))]
    (event,) = events
    assert event.parent_service is None and event.body == "op failed"


def test_exception_event_explains_a_failure_without_a_message() -> None:
    span = _span(bytes(range(16)), b"\x07" * 8, error=True, name="SELECT orders")
    span.events.add(name="exception", time_unix_nano=T0_NS, attributes=[
        _kv("exception.type", AnyValue(string_value="psycopg.OperationalError")),
        _kv("exception.message", AnyValue(string_value="server closed the connection"))])
    (event,), _ = decode_otlp_traces(_trace_request(("orders", [span])).SerializeToString(), "otlp_proto")
    assert event.body == "SELECT orders failed: psycopg.OperationalError: server closed the connection"


def test_error_span_without_times_is_rejected() -> None:
    span = Span(trace_id=bytes(range(16)), span_id=b"\x01" * 8, name="x",
                status=Status(code=Status.STATUS_CODE_ERROR))
    with pytest.raises(InvalidEvent) as exc:
        decode_otlp_traces(_trace_request(("svc", [span])).SerializeToString(), "otlp_proto")
    assert exc.value.field == "resourceSpans[0].scopeSpans[0].spans[0].endTimeUnixNano"


# --------------------------------------------------------------------------- bad bytes


@pytest.mark.parametrize("value", [b"hello world", b"\xff\xff\xff", b"\x12\x00"])
def test_garbage_protobuf_is_a_decode_error(value: bytes) -> None:
    with pytest.raises(NotOTLP) as exc:
        decode_otlp_logs(value, "otlp_proto")
    assert "not an OTLP logs protobuf" in exc.value.reason
    with pytest.raises(DecodeError):
        decode_otlp_traces(value, "otlp_proto")


def test_empty_protobuf_request_is_no_records() -> None:
    assert decode_otlp_logs(b"", "otlp_proto") == []
    assert decode_otlp_traces(b"", "otlp_proto") == ([], [])


@pytest.mark.parametrize("value,error", [
    (b"{not json", NotJSON),
    (b"[]", NotOTLP),
    (b'{"resourceSpans": []}', NotOTLP),  # traces sent to the logs decoder
    (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": "LOUD"}]}]}]}', InvalidEvent),
    (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "not-an-id!"}]}]}]}', InvalidEvent),
    (b'{"resourceLogs": ["x"]}', InvalidEvent),
    (b'{"resourceLogs": [{"scopeLogs": {"logRecords": []}}]}', InvalidEvent),
])
def test_bad_otlp_json_is_a_decode_error(value: bytes, error: type[DecodeError]) -> None:
    with pytest.raises(error) as exc:
        decode_otlp_logs(value, "otlp_json")
    assert exc.value.reason


def test_unknown_json_fields_are_ignored() -> None:
    value = json.dumps({"resourceLogs": [{"futureField": 1, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": str(T0_NS), "severityNumber": 17, "body": {"stringValue": "boom"}, "newThing": {}}]}]}]})
    (event,) = decode_otlp_logs(value.encode(), "otlp_json")
    assert event.severity is Severity.error and event.title == "boom" and event.occurred_at == T0


# --------------------------------------------------------------------------- Kafka sniffing


def test_kafka_value_sniffing(sdk_logs: Any) -> None:
    logs = sdk_log_request(*sdk_logs)
    traces = sdk_trace_request()

    events, edges = decode_kafka_value("logs", logs.SerializeToString())
    assert len(events) == 4 and edges == []
    events, edges = decode_kafka_value("logs", collector_json(logs))
    assert len(events) == 4
    events, edges = decode_kafka_value("traces", traces.SerializeToString())
    assert len(events) == 1 and len(edges) == 2
    events, edges = decode_kafka_value("traces", collector_json(traces))
    assert len(events) == 1 and len(edges) == 2

    generic = json.dumps({"kind": "alert", "source": "nagios", "occurred_at": "2026-03-11T14:00:00Z",
                          "severity": "critical", "title": "Disk full"}).encode()
    (event,), edges = decode_kafka_value("alerts", generic)
    assert event.source == "nagios" and edges == []
    assert decode_kafka_value("alerts", generic)[0][0].id == event.id


def test_kafka_protobuf_whose_length_byte_looks_like_json() -> None:
    # A request whose first ResourceLogs is 123 bytes long serializes as b"\n{" + ...
    for size in range(60, 130):
        value = _log_request(LogRecord(time_unix_nano=T0_NS, body=AnyValue(string_value="x" * size)),
                             resource={}).SerializeToString()
        if value[:2] == b"\n{":
            break
    assert value[:2] == b"\n{"
    (event,), _ = decode_kafka_value("logs", value)
    assert event.body.startswith("xxx")


@pytest.mark.parametrize("topic,value,error", [
    ("logs", None, NotJSON),
    ("logs", b"", NotOTLP),
    ("alerts", b"\x0a\x02\x0a\x00", NotJSON),  # protobuf on the alerts topic
    ("traces", b'{"broken": ', NotJSON),
    ("logs", b'{"neither": 1}', InvalidEvent),
    ("traces", b"garbage bytes", NotOTLP),
    ("alerts", b'{"kind": "alert"}', InvalidEvent),
])
def test_kafka_bad_values(topic: Any, value: bytes | None, error: type[DecodeError]) -> None:
    with pytest.raises(error) as exc:
        decode_kafka_value(topic, value)
    assert exc.value.reason


def test_the_kafka_decoder_names_the_domain_from_the_configured_labels() -> None:
    from triage.domain.errors import DecodeError
    from triage.ingest.kafka import decoder_for
    doc = {"kind": "alert", "source": "ci", "occurred_at": "2026-03-11T14:00:00Z", "severity": "critical",
           "title": "disk full", "labels": {"cluster": "eu"}}
    events, _ = decoder_for({"alerts": "alerts"}, ["cluster"])("alerts", json.dumps(doc).encode())
    assert events[0].labels["triage.domain"] == "eu"
    events, _ = decoder_for({"alerts": "alerts"})("alerts", json.dumps(doc).encode())
    assert "triage.domain" not in events[0].labels
    doc["labels"] = {"cluster": "c" * 101}
    with pytest.raises(DecodeError, match="correlation domain"):   # the consumer dead-letters it
        decoder_for({"alerts": "alerts"}, ["cluster"])("alerts", json.dumps(doc).encode())
