"""OpenTelemetry logs and traces (OTLP) to ``Event`` objects and service-call edges.

Input is one Kafka message value as the OpenTelemetry Collector's Kafka exporter
writes it: an ``ExportLogsServiceRequest`` / ``ExportTraceServiceRequest``, either
protobuf-serialized (``encoding: otlp_proto``, the exporter's default) or in the
OTLP JSON encoding (``otlp_json``). OTLP JSON writes trace and span ids as hex;
the protobuf canonical JSON mapping (what ``json_format.MessageToJson`` produces)
writes them as base64. Both are accepted: the id's length tells them apart.

Logs: every record becomes an Event (kind ``log``).
Traces: only spans with status ERROR become Events (kind ``span``); every span
whose parent span belongs to another service yields a ``ServiceEdge`` (caller ->
callee), which is how triage learns the call graph without configuration.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import ValidationError

from triage.ingest.decode import check_size, describe_validation_error, event_from_dict, looks_like_json, parse_json
from triage.domain.errors import DecodeError, InvalidEvent, NotJSON
from triage.domain.event import (
    DEFAULT_LIMITS, EARLIEST, LATEST, Event, EventKind, LabelValue, Limits, ServiceEdge, Severity, normalize_severity,
)

OtlpEncoding = Literal["otlp_proto", "otlp_json"]
TopicKind = Literal["alerts", "logs", "traces"]

SOURCE = "otel"
SEVERITY_DEFAULTED = "triage.severity_defaulted"
_TITLE_MAX = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HEX = re.compile(r"[0-9a-fA-F]*")
_HOST_ATTRIBUTES = ("host.name", "k8s.node.name")

__all__ = ["NotOTLP", "ServiceEdge", "decode_kafka_value", "decode_otlp_logs", "decode_otlp_traces"]


class NotOTLP(DecodeError):
    """The bytes are not an OTLP export request of the expected signal."""




# --------------------------------------------------------------------------- parsing

# Where OTLP JSON carries ids, per signal: (path to the repeated items, id fields).
_ID_FIELDS = {
    "resourceLogs": ("scopeLogs", "logRecords", ("traceId", "spanId")),
    "resourceSpans": ("scopeSpans", "spans", ("traceId", "spanId", "parentSpanId")),
}
_ID_SIZES = (16, 8)  # trace id, span id bytes


def _hex_ids_to_base64(obj: dict[str, Any], fields: Iterable[str]) -> None:
    """Rewrite OTLP JSON's hex ids in place as base64, which json_format expects.

    A hex trace id is 32 characters and a span id 16; their base64 forms are 24
    and 12, so a value is unambiguously one or the other.
    """
    for name in fields:
        value = obj.get(name)
        if isinstance(value, str) and len(value) in (2 * n for n in _ID_SIZES) and _HEX.fullmatch(value):
            obj[name] = base64.b64encode(bytes.fromhex(value)).decode()


def _dicts(value: Any, where: str) -> list[dict[str, Any]]:
    # json_format, told to ignore unknown fields, would read a bare string in a
    # list of messages as an unknown field name and make an empty message of it.
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidEvent(f"{where} must be a list", where)
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidEvent(f"{where}[{i}] must be an object, got {type(item).__name__}", f"{where}[{i}]")
    return value


def _normalize_json_ids(doc: dict[str, Any], top: str) -> None:
    middle, leaf, fields = _ID_FIELDS[top]
    for i, resource in enumerate(_dicts(doc.get(top), top)):
        old = "instrumentationLibrary" + middle.removeprefix("scope")
        if old in resource:
            # Pre-1.0 OTLP; ignoring the unknown field would drop every record silently.
            raise InvalidEvent(f"{top}[{i}].{old} is the pre-1.0 OTLP JSON layout; "
                               f"upgrade the sender to one that writes {middle}", f"{top}[{i}].{old}")
        for j, scope in enumerate(_dicts(resource.get(middle), f"{top}[{i}].{middle}")):
            for k, item in enumerate(_dicts(scope.get(leaf), f"{top}[{i}].{middle}[{j}].{leaf}")):
                _hex_ids_to_base64(item, fields)
                for link in _dicts(item.get("links"), f"{top}[{i}].{middle}[{j}].{leaf}[{k}].links"):
                    _hex_ids_to_base64(link, ("traceId", "spanId"))


def _parse(value: bytes, encoding: OtlpEncoding, message: Message, top: str) -> None:
    """Fill ``message`` from ``value``; ``top`` is the JSON name of its one list field."""
    signal = "logs" if top == "resourceLogs" else "traces"
    if encoding == "otlp_proto":
        try:
            message.ParseFromString(value)
        except (ProtobufDecodeError, ValueError, RuntimeError) as exc:
            raise NotOTLP(f"not an OTLP {signal} protobuf message: {exc}") from None
        if value and not message.ListFields():
            # Non-empty bytes that parse to nothing are some other message.
            raise NotOTLP(f"not an OTLP {signal} protobuf message: no {top} in {len(value)} bytes")
        return
    if encoding != "otlp_json":
        raise ValueError(f"unknown OTLP encoding {encoding!r}")
    doc = parse_json(value)
    if not isinstance(doc, dict) or not isinstance(doc.get(top), list):
        raise NotOTLP(f"OTLP JSON {signal} must be an object with a {top} list", top)
    _normalize_json_ids(doc, top)
    try:
        # Receivers must ignore fields they do not know (newer OTLP versions add some).
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidEvent(f"invalid OTLP JSON {signal}: {exc}") from None


# --------------------------------------------------------------------------- values


def _any_to_python(value: AnyValue, depth: int = 0) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_to_python(v, depth + 1) for v in value.array_value.values] if depth < 8 else "…"
    if kind == "kvlist_value":
        return ({kv.key: _any_to_python(kv.value, depth + 1) for kv in value.kvlist_value.values}
                if depth < 8 else "…")
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _flatten(attributes: Iterable[KeyValue], out: dict[str, LabelValue], prefix: str = "", depth: int = 0) -> None:
    """Scalar attributes as labels; nested maps as dotted keys; arrays and bytes are left out."""
    for kv in attributes:
        key = prefix + kv.key
        kind = kv.value.WhichOneof("value")
        if kind in ("string_value", "bool_value", "int_value", "double_value"):
            out[key] = getattr(kv.value, kind)
        elif kind == "kvlist_value" and depth < 4:
            _flatten(kv.value.kvlist_value.values, out, key + ".", depth + 1)


def _attrs(attributes: Iterable[KeyValue]) -> dict[str, LabelValue]:
    out: dict[str, LabelValue] = {}
    _flatten(attributes, out)
    return out


def _text(value: AnyValue) -> str:
    data = _any_to_python(value)
    if data is None:
        return ""
    return data if isinstance(data, str) else json.dumps(data, default=str, ensure_ascii=False)


# Keys of structured (JSON) log bodies that say what happened, most specific first:
# in zap/logrus/pino style lines "error" holds the cause, "msg" the event.
_MESSAGE_KEYS = ("error", "msg", "message")


def _message_of(body: AnyValue, text: str) -> str:
    """The human line of a log body: a structured body's message field, else the text."""
    fields: Any = None
    if body.WhichOneof("value") == "kvlist_value":
        fields = _any_to_python(body)
    elif text.startswith("{"):
        try:
            fields = json.loads(text)
        except ValueError:
            fields = None
    if isinstance(fields, dict):
        for key in _MESSAGE_KEYS:
            if isinstance(fields.get(key), str) and fields[key].strip():
                return str(fields[key])
    return text


def _title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= _TITLE_MAX else line[: _TITLE_MAX - 1] + "…"
    return fallback


def _hex_id(raw: bytes) -> str | None:
    return raw.hex() if raw and any(raw) else None


def _time(nanos: int) -> datetime | None:
    return _EPOCH + timedelta(microseconds=nanos // 1000) if nanos > 0 else None


def _service_host(resource_attrs: dict[str, LabelValue]) -> tuple[str | None, str | None]:
    service = resource_attrs.get("service.name")
    host = next((resource_attrs[a] for a in _HOST_ATTRIBUTES if resource_attrs.get(a)), None)
    return (str(service) if service else None), (str(host) if host else None)


def _digest(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))  # length-prefixed: no two splits collide
        h.update(part)
    return h.hexdigest()


def _build(data: dict[str, Any], where: str, limits: Limits) -> Event:
    try:
        return Event.model_validate(data, context=limits)
    except ValidationError as exc:
        reason, field = describe_validation_error(exc)
        raise InvalidEvent(f"{where}: {reason}", f"{where}.{field}" if field else where) from None


# --------------------------------------------------------------------------- logs


def _log_severity(number: int, text: str, where: str) -> tuple[Severity, str | None, bool]:
    """(severity, severity_raw, defaulted). The number wins: it is OTel's normalized scale."""
    if number:
        try:
            severity = normalize_severity(number)
        except ValueError as exc:
            raise InvalidEvent(f"{where}.severityNumber: {exc}", f"{where}.severityNumber") from None
        name = SeverityNumber.Name(number) if number in SeverityNumber.values() else str(number)
        return severity, text or name, False
    if text:
        try:
            return normalize_severity(text), text, False
        except ValueError as exc:
            raise InvalidEvent(f"{where}.severityText: {exc}", f"{where}.severityText") from None
    return Severity.info, None, True


def decode_otlp_logs(value: bytes, encoding: OtlpEncoding, limits: Limits = DEFAULT_LIMITS) -> list[Event]:
    """Every log record of an ExportLogsServiceRequest as an Event (kind ``log``).

    * service: resource ``service.name``; host: ``host.name``, else ``k8s.node.name``.
    * severity: ``severity_number`` when set (OTel's 1..24 scale), else
      ``severity_text`` through ``normalize_severity`` (an unknown word is an error
      naming the record); a record with neither is ``info``, the level of a plain
      unannotated line, labeled ``triage.severity_defaulted = True``.
    * title: first non-empty line of the body's message (truncated): for a map
      body, or a string body holding a JSON object, its ``error``, ``msg`` or
      ``message`` field; body: the whole body, JSON for map/array bodies.
    * labels: resource attributes, then record attributes (which win), scalars only,
      nested maps as dotted keys.
    * occurred_at: ``time_unix_nano``, else ``observed_time_unix_nano``.
    * id: hash of the resource, scope name and the serialized record, so a
      redelivered message stores each record once.
    """
    request = ExportLogsServiceRequest()
    _parse(value, encoding, request, "resourceLogs")
    events: list[Event] = []
    for i, resource_logs in enumerate(request.resource_logs):
        resource_attrs = _attrs(resource_logs.resource.attributes)
        service, host = _service_host(resource_attrs)
        resource_bytes = resource_logs.resource.SerializeToString(deterministic=True)
        for j, scope_logs in enumerate(resource_logs.scope_logs):
            scope_name = scope_logs.scope.name
            for k, record in enumerate(scope_logs.log_records):
                where = f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"
                # event_name arrived in OTLP 1.5; older opentelemetry-proto builds lack it.
                event_name = str(getattr(record, "event_name", ""))
                occurred_at = _time(record.time_unix_nano) or _time(record.observed_time_unix_nano)
                if occurred_at is None:
                    raise InvalidEvent(f"{where}: neither timeUnixNano nor observedTimeUnixNano is set",
                                       f"{where}.timeUnixNano")
                severity, severity_raw, defaulted = _log_severity(
                    record.severity_number, record.severity_text, where)
                labels = {**resource_attrs, **_attrs(record.attributes)}
                if scope_name:
                    labels["otel.scope.name"] = scope_name
                if event_name:
                    labels["otel.event.name"] = event_name
                if defaulted:
                    labels[SEVERITY_DEFAULTED] = True
                body = _text(record.body)
                events.append(_build({
                    "id": "otel-log-" + _digest(resource_bytes, scope_name.encode(),
                                                record.SerializeToString(deterministic=True)),
                    "kind": EventKind.log,
                    "source": SOURCE,
                    "occurred_at": occurred_at,
                    "service": service,
                    "host": host,
                    "severity": severity,
                    "severity_raw": severity_raw,
                    "title": _title(_message_of(record.body, body),
                                    fallback=event_name or "(empty log record)"),
                    "body": body,
                    "labels": labels,
                    "trace_id": _hex_id(record.trace_id),
                    "span_id": _hex_id(record.span_id),
                }, where, limits))
    return events


# --------------------------------------------------------------------------- traces


@dataclass(frozen=True)
class _SpanInfo:
    span: Span
    service: str | None
    host: str | None
    resource_attrs: dict[str, LabelValue]
    where: str


def _span_kind(kind: int) -> str:
    try:
        return str(Span.SpanKind.Name(kind)).removeprefix("SPAN_KIND_")
    except ValueError:  # proto3 enums are open: a newer sender may use a value we lack
        return str(kind)


def _span_time(span: Span) -> datetime | None:
    return _time(span.end_time_unix_nano) or _time(span.start_time_unix_nano)


def _caller_service(info: _SpanInfo, index: dict[tuple[bytes, bytes], _SpanInfo]) -> str | None:
    """The nearest ancestor span's service that differs from this span's, within the request."""
    seen = {info.span.span_id}
    parent_id = info.span.parent_span_id
    while parent_id and parent_id not in seen:
        parent = index.get((info.span.trace_id, parent_id))
        if parent is None:
            return None
        if parent.service and parent.service != info.service:
            return parent.service
        seen.add(parent_id)
        parent_id = parent.span.parent_span_id
    return None


def _error_text(span: Span) -> str:
    if span.status.message:
        return f"{span.name} failed: {span.status.message}"
    for event in span.events:
        if event.name == "exception":
            attrs = _attrs(event.attributes)
            detail = ": ".join(str(attrs[k]) for k in ("exception.type", "exception.message") if attrs.get(k))
            if detail:
                return f"{span.name} failed: {detail}"
    return f"{span.name} failed"


def decode_otlp_traces(value: bytes, encoding: OtlpEncoding,
                       limits: Limits = DEFAULT_LIMITS) -> tuple[list[Event], list[ServiceEdge]]:
    """Error spans as Events and the service-to-service calls seen in one request.

    * A span with status ERROR becomes an Event (kind ``span``, severity ``error``):
      title = span name, body = "<name> failed: <status message or exception>",
      labels = resource then span attributes plus ``span.kind`` and ``duration_ms``,
      ``parent_service`` = the nearest ancestor in another service, occurred_at =
      end time (when the failure was known), id = ``otel-span-<trace>-<span>`` so a
      redelivered span is stored once. Spans that did not fail produce no Event.
    * A span whose parent span (looked up by trace id + span id among all spans of
      this request) belongs to another service yields ServiceEdge(parent's service
      -> span's service). A parent outside the request is unknown and yields
      nothing. Edges are deduplicated per request, keeping the latest time; a time
      outside the ones an event may carry (``EARLIEST``..``LATEST``) teaches nothing.
    """
    request = ExportTraceServiceRequest()
    _parse(value, encoding, request, "resourceSpans")
    infos: list[_SpanInfo] = []
    for i, resource_spans in enumerate(request.resource_spans):
        resource_attrs = _attrs(resource_spans.resource.attributes)
        service, host = _service_host(resource_attrs)
        for j, scope_spans in enumerate(resource_spans.scope_spans):
            for k, span in enumerate(scope_spans.spans):
                infos.append(_SpanInfo(span, service, host, resource_attrs,
                                       f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"))
    index = {(info.span.trace_id, info.span.span_id): info for info in infos if info.span.span_id}

    edges: dict[tuple[str, str], datetime] = {}
    events: list[Event] = []
    for info in infos:
        span = info.span
        parent = index.get((span.trace_id, span.parent_span_id)) if span.parent_span_id else None
        observed_at = _span_time(span)
        if (parent is not None and parent.service and info.service and parent.service != info.service
                and observed_at is not None and EARLIEST <= observed_at < LATEST):
            pair = (parent.service, info.service)
            edges[pair] = max(observed_at, edges.get(pair, observed_at))
        if span.status.code != Status.STATUS_CODE_ERROR:
            continue
        if observed_at is None:
            raise InvalidEvent(f"{info.where}: an error span needs startTimeUnixNano or endTimeUnixNano",
                               f"{info.where}.endTimeUnixNano")
        labels: dict[str, LabelValue] = {**info.resource_attrs, **_attrs(span.attributes)}
        labels["span.kind"] = _span_kind(span.kind)
        if span.start_time_unix_nano and span.end_time_unix_nano >= span.start_time_unix_nano:
            labels["duration_ms"] = round((span.end_time_unix_nano - span.start_time_unix_nano) / 1e6, 3)
        trace_id, span_id = _hex_id(span.trace_id), _hex_id(span.span_id)
        event_id = (f"otel-span-{trace_id}-{span_id}" if trace_id and span_id
                    else "otel-span-" + _digest(span.SerializeToString(deterministic=True)))
        events.append(_build({
            "id": event_id,
            "kind": EventKind.span,
            "source": SOURCE,
            "occurred_at": observed_at,
            "service": info.service,
            "host": info.host,
            "severity": Severity.error,
            "severity_raw": "STATUS_CODE_ERROR",
            "title": _title(span.name, fallback="(unnamed span)"),
            "body": _error_text(span),
            "labels": labels,
            "trace_id": trace_id,
            "span_id": span_id,
            "parent_service": _caller_service(info, index),
        }, info.where, limits))
    return events, [ServiceEdge(caller, callee, at) for (caller, callee), at in edges.items()]


# --------------------------------------------------------------------------- Kafka


def decode_kafka_value(topic_kind: TopicKind, value: bytes | None,
                       limits: Limits = DEFAULT_LIMITS) -> tuple[list[Event], list[ServiceEdge]]:
    """Decode one Kafka message value of any format triage reads, by looking at it.

    * a JSON object with ``kind``: one event in triage's own field names;
    * a JSON object with ``resourceLogs`` / ``resourceSpans``: OTLP JSON;
    * anything else on a logs or traces topic: OTLP protobuf of that signal.
    The alerts topic carries JSON only. Errors are ``DecodeError`` with a reason; a
    message past ``limits.max_message_bytes`` is refused before it is parsed.
    """
    if value is None:
        raise NotJSON("empty message (tombstone)")
    if not value:
        raise NotOTLP("empty message")
    check_size(value, limits)
    if looks_like_json(value):
        try:
            doc = parse_json(value)
        except NotJSON:
            # A protobuf request starts with b"\n" (field 1) and a length byte that
            # may be "{" (123): only that shape gets a second chance as protobuf.
            # Anything else starting with "{" or "[" is no OTLP message: broken JSON.
            if value[:1] != b"\n" or topic_kind == "alerts":
                raise
            doc = None
    else:
        doc = None
    if doc is not None:
        if isinstance(doc, dict) and "resourceLogs" in doc:
            return decode_otlp_logs(value, "otlp_json", limits), []
        if isinstance(doc, dict) and "resourceSpans" in doc:
            return decode_otlp_traces(value, "otlp_json", limits)
        if isinstance(doc, dict) and "kind" in doc:
            return [event_from_dict(doc, default_id_basis=value, limits=limits)], []
        raise InvalidEvent("JSON message is neither a triage event (no 'kind') nor OTLP JSON "
                           "(no 'resourceLogs' or 'resourceSpans')")
    if topic_kind == "logs":
        return decode_otlp_logs(value, "otlp_proto", limits), []
    if topic_kind == "traces":
        return decode_otlp_traces(value, "otlp_proto", limits)
    raise NotJSON("the alerts topic carries JSON events; this message is not JSON")
