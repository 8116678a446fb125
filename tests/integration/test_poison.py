"""Poison messages against the real broker and PostgreSQL: whatever a batch holds, every
good event is stored and every poison reaches the dead-letter topic with its reason, in
bounded time. Singles of over forty kinds; pairs of poisons in one batch (among them an id
holding a NUL beside a year-9999 date of the same alert identity, at
validation and, past it, in the store); a lone poison with nothing behind it, which the
consumer must not take for a database outage. And the other side: an outage (a database
that answers but takes no writes) dead-letters nothing, shows as a stalled consumer with
its lag, and everything is stored once the database is back.

The consumer is ``triage consume``'s own (``Runtime.make_consumer``: the decoder with the
configured limits, the pipeline on PostgreSQL, the store's probe, the metrics). For the
store's own refusals, which validation is there to prevent, a message starting with
``BYPASS`` is decoded into an event past validation, standing in for a value nobody
foresaw."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from kafka import KafkaProducer

from tests.integration.kafka_helpers import isolated_settings, read_topic, wait_for
from triage.broker import EmbeddedBroker
from triage.domain.event import Event
from triage.ingest.kafka import DLQ_KIND, DLQ_OFFSET, DLQ_REASON, DLQ_TOPIC, BatchConsumer, Decoded
from triage.ingest.kafka_admin import ensure_topics
from triage.service import Runtime
from triage.settings import Settings
from triage.store import SqlStore

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 11, 14, 0, tzinfo=timezone.utc)
LIMITS = {"max_body_bytes": 64 * 1024, "max_labels": 50, "max_label_key_length": 64,
          "max_label_value_length": 4096, "max_title_length": 2000, "max_event_body_length": 8192}
NAN, INF = math.nan, math.inf


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def doc(name: str, seconds: float = 0, **fields: Any) -> bytes:
    """A valid alert (``json.dumps`` writes NaN and infinities as JavaScript does)."""
    event = {"id": name, "kind": "alert", "source": "alertmanager", "occurred_at": at(seconds),
             "service": "checkout", "severity": "critical", "title": f"HighErrorRate {name}",
             "labels": {"alertname": "HighErrorRate", "case": name}, "fingerprint": f"fp-{name}"}
    event.update(fields)
    return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()


def bypass(name: str, seconds: float = 0, **update: Any) -> bytes:
    """A message the test decoder turns into an event past validation (``update`` applied
    with ``model_copy``): values validation refuses, reaching the store."""
    spec = {"doc": doc(name, seconds).decode(), "update": update}
    return b"BYPASS " + json.dumps(spec, default=lambda v: v.isoformat()).encode()


def otlp_logs(attribute: dict[str, Any]) -> bytes:
    return json.dumps({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "cart"}}]}, "scopeLogs": [{"logRecords": [{
            "timeUnixNano": str(int(T0.timestamp() * 1e9)), "body": {"stringValue": "boom"},
            "attributes": [attribute]}]}]}]}).encode()


def otlp_span(end_unix_nano: int) -> bytes:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "cart"}}]}, "scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "GetCart",
            "startTimeUnixNano": str(int(T0.timestamp() * 1e9)), "endTimeUnixNano": str(end_unix_nano),
            "status": {"code": 2}}]}]}]}).encode()


# (name, topic kind, value, the dead-letter kind expected)
SINGLES: list[tuple[str, str, bytes | None, str]] = [
    ("not JSON", "alerts", b"{not json", "decode"),
    ("not UTF-8", "alerts", b"\xff\xfe{}", "decode"),
    ("empty", "alerts", b"", "decode"),
    ("tombstone", "alerts", None, "decode"),
    ("a JSON string", "alerts", b'"HighErrorRate"', "decode"),
    ("a JSON array", "alerts", b"[1, 2]", "validation"),
    ("no kind", "alerts", doc("p-nokind", kind=...), "validation"),
    ("unknown kind", "alerts", doc("p-kind", kind="metric"), "validation"),
    ("no title", "alerts", doc("p-notitle", title=...), "validation"),
    ("unknown severity", "alerts", doc("p-sev", severity="apocalyptic"), "validation"),
    ("severity number out of range", "alerts", doc("p-sevnum", severity=25), "validation"),
    ("no time zone", "alerts", doc("p-naive", occurred_at="2026-03-11T14:00:00"), "validation"),
    ("year 9999", "alerts", doc("p-9999", occurred_at="9999-12-31T00:00:00Z"), "validation"),
    ("offset past the calendar", "alerts", doc("p-cal", occurred_at="9999-12-31T23:59:59-01:00"), "validation"),
    ("year 1", "alerts", doc("p-year1", occurred_at="0001-01-01T00:00:00+01:00"), "validation"),
    ("before 1970", "alerts", doc("p-1969", occurred_at="1969-12-31T23:59:59Z"), "validation"),
    ("starts_at year 9999", "alerts", doc("p-starts", starts_at="9999-12-31T00:00:00Z"), "validation"),
    ("ends_at year 2300", "alerts", doc("p-ends", ends_at="2300-01-01T00:00:00Z"), "validation"),
    ("NUL in id", "alerts", doc("p-nul\x00id"), "validation"),
    ("NUL in service", "alerts", doc("p-nulsvc", service="check\x00out"), "validation"),
    ("NUL in host", "alerts", doc("p-nulhost", host="node\x001"), "validation"),
    ("NUL in fingerprint", "alerts", doc("p-nulfp", fingerprint="fp\x00"), "validation"),
    ("NUL in source", "alerts", doc("p-nulsrc", source="alert\x00manager"), "validation"),
    ("NUL in a label name", "alerts", doc("p-nulkey", labels={"alert\x00name": "x"}), "validation"),
    ("NUL in a label value", "alerts", doc("p-nulval", labels={"alertname": "High\x00ErrorRate"}), "validation"),
    ("NaN label", "alerts", doc("p-nan", labels={"load": NAN}), "validation"),
    ("Infinity label", "alerts", doc("p-inf", labels={"load": INF}), "validation"),
    ("-Infinity label", "alerts", doc("p-ninf", labels={"load": -INF}), "validation"),
    ("NaN in the raw payload", "alerts", doc("p-rawnan", raw={"values": [1, {"B": NAN}]}), "validation"),
    ("too many labels", "alerts", doc("p-labels", labels={f"l{i}": i for i in range(51)}), "validation"),
    ("label name too long", "alerts", doc("p-keylen", labels={"k" * 65: 1}), "validation"),
    ("label value too long", "alerts", doc("p-vallen", labels={"alertname": "A" * 4097}), "validation"),
    ("title too long", "alerts", doc("p-title", title="t" * 2001), "validation"),
    ("body too long", "alerts", doc("p-body", body="b" * 8193), "validation"),
    ("id too long", "alerts", doc("p-" + "i" * 200), "validation"),
    ("domain too long", "alerts", doc("p-domain", labels={"triage.domain": "d" * 101}), "validation"),
    ("100 KB alertname", "alerts", doc("p-100k", labels={"alertname": "A" * 100_000}), "too_large"),
    ("200 KB body", "alerts", doc("p-200k", body="b" * 200_000), "too_large"),
    ("protobuf garbage on logs", "logs", b"\x12\x00garbage", "decode"),
    ("OTLP log with a NaN attribute", "logs", otlp_logs({"key": "v", "value": {"doubleValue": "NaN"}}), "validation"),
    ("OTLP error span ending in 2554", "traces", otlp_span(2**64 - 1), "validation"),
    ("the store refuses a NUL", "alerts", bypass("p-store-nul", 3, fingerprint="fp\x00"), "store_refused"),
    ("the correlator overflows", "alerts",
     bypass("p-store-late", 4, occurred_at=datetime(9999, 12, 31, 23, tzinfo=timezone.utc)), "failed_alone"),
]

LATE = datetime(9999, 12, 31, 23, tzinfo=timezone.utc)
# Pairs of poisons in one batch, adjacent in the stream.
PAIRS: list[tuple[str, list[tuple[bytes, str]]]] = [
    ("the issue's pair, at validation", [
        (doc("pair1-nul\x00", 10, fingerprint="fp-same"), "validation"),
        (doc("pair1-9999", 10, fingerprint="fp-same", occurred_at="9999-12-31T00:00:00Z"), "validation")]),
    ("the issue's pair, in the store", [
        (bypass("pair2-nul", 11, id="pair2-nul\x00", fingerprint="fp-same2"), "store_refused"),
        (bypass("pair2-late", 11, fingerprint="fp-same2", occurred_at=LATE), "failed_alone")]),
    ("oversize and invalid JSON", [(doc("pair3-big", 12, body="b" * 70_000), "too_large"),
                                   (b'{"id": "pair3-broken", ', "decode")]),
    ("NaN label and NUL label name", [(doc("pair4-nan", 13, labels={"v": NAN}), "validation"),
                                      (doc("pair4-nul", 13, labels={"a\x00": "b"}), "validation")]),
    ("two that overflow alike", [(bypass("pair5-a", 14, occurred_at=LATE), "failed_alone"),
                                 (bypass("pair5-b", 14, occurred_at=LATE), "failed_alone")]),
    ("a refusal and an overflow, apart", [(bypass("pair6-nul", 15, host="h\x00"), "store_refused"),
                                         (doc("pair6-good", 15), ""),
                                         (bypass("pair6-late", 15, occurred_at=LATE), "failed_alone")]),
]


def test_the_cases_are_many_and_distinct() -> None:
    assert len(SINGLES) >= 30 and len({name for name, *_ in SINGLES}) == len(SINGLES)
    assert sum(len(p) for _, p in PAIRS) >= 10


def bypassing(decoder: Any) -> Any:
    def decode(topic: str, value: bytes | None) -> Decoded:
        if value is not None and value.startswith(b"BYPASS "):
            spec = json.loads(value[len(b"BYPASS "):])
            event = Event.model_validate_json(spec["doc"])
            update = {k: datetime.fromisoformat(v) if k.endswith("_at") else v for k, v in spec["update"].items()}
            return [event.model_copy(update=update)], []
        result: Decoded = decoder(topic, value)
        return result
    return decode


@contextmanager
def consuming(settings: Settings) -> Iterator[tuple[Runtime, BatchConsumer]]:
    runtime = Runtime.build(settings)
    consumer = runtime.make_consumer()
    consumer.decoder = bypassing(consumer.decoder)
    thread = threading.Thread(target=consumer.run, args=(runtime.stop,), daemon=True)
    thread.start()
    try:
        yield runtime, consumer
    finally:
        runtime.stop.set()
        thread.join(timeout=60)
        runtime.close()


def send(settings: Settings, messages: list[tuple[str, bytes | None]]) -> None:
    topics = {"alerts": settings.topic_alerts, "logs": settings.topic_logs, "traces": settings.topic_traces}
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=50,
                             max_request_size=2 * 1024 * 1024)
    for kind, value in messages:
        producer.send(topics[kind], key=b"global", value=value)
    producer.flush()
    producer.close()


def dead_letters(settings: Settings, expected: int, timeout: float) -> dict[tuple[str, int], Any]:
    got = read_topic(settings.kafka_bootstrap_servers, settings.topic_dlq, expected, timeout=timeout)
    return {(dict(m.headers)[DLQ_TOPIC].decode(), int(dict(m.headers)[DLQ_OFFSET])): m for m in got}


@pytest.mark.postgres
@pytest.mark.parametrize("correlator_process", [False, True], ids=["one-process", "correlator-process"])
def test_every_poison_is_dead_lettered_with_its_reason_and_every_good_event_stored(
        broker: EmbeddedBroker, pg_url: str, correlator_process: bool) -> None:
    # With a correlator process the store's failures cross back from the child as raised
    # there, and the same search finds the same poisons.
    settings = isolated_settings(broker.bootstrap_servers, pg_url, topic_partitions=1,
                                 correlator_process=correlator_process, **LIMITS)
    started = time.monotonic()
    with consuming(settings) as (runtime, consumer):
        # 1. A lone poison: the only message of its batch, nothing behind it. Before, it was
        # taken for a database outage and retried every second, a traceback each time.
        send(settings, [("alerts", bypass("lone-late", 0, occurred_at=LATE))])
        lone = dead_letters(settings, 1, timeout=60)
        assert [dict(m.headers)[DLQ_KIND] for m in lone.values()] == [b"failed_alone"]
        assert time.monotonic() - started < 90

        # 2. Everything else in one go: good events between every poison, pairs adjacent.
        stream: list[tuple[str, bytes | None, str]] = []
        good: list[str] = []
        for i, (name, kind, value, expected) in enumerate(SINGLES):
            good.append(f"good-{i}")
            stream.append(("alerts", doc(f"good-{i}", 20 + i), ""))
            stream.append((kind, value, expected))
        for _, pair in PAIRS:
            stream += [("alerts", value, expected) for value, expected in pair]
        good += ["pair6-good"]
        good += [f"good-tail-{i}" for i in range(10)]
        stream += [("alerts", doc(f"good-tail-{i}", 100 + i), "") for i in range(10)]
        send(settings, [(kind, value) for kind, value, _ in stream])

        poisons = [(kind, expected) for kind, _, expected in stream if expected]
        wait_for(lambda: all(runtime.store.get_event(g) is not None for g in good), 180, "every good event stored")
        got = dead_letters(settings, 1 + len(poisons), timeout=120)
        assert time.monotonic() - started < 300   # bounded: no retry loop without end

        # Offsets per topic, in production order, tell which message each dead letter is.
        offsets: Counter[str] = Counter({settings.topic_alerts: 1})
        expected_by_offset: dict[tuple[str, int], tuple[str, bytes | None]] = {}
        topics = {"alerts": settings.topic_alerts, "logs": settings.topic_logs, "traces": settings.topic_traces}
        for kind, value, expected in stream:
            topic = topics[kind]
            if expected:
                expected_by_offset[(topic, offsets[topic])] = (expected, value)
            offsets[topic] += 1
        dead = {k: v for k, v in got.items() if k != (settings.topic_alerts, 0)}
        assert set(dead) == set(expected_by_offset), "every poison dead-lettered, nothing else"
        for key, message in dead.items():
            kind, value = expected_by_offset[key]
            headers = dict(message.headers)
            assert headers[DLQ_KIND].decode() == kind, (key, headers[DLQ_REASON])
            assert headers[DLQ_REASON], key
            assert message.value == value   # the original bytes, to replay once fixed

        assert runtime.store.count_events() == len(good)
        by_reason: Counter[str] = Counter()
        for metric in runtime.metrics.dead_lettered.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    by_reason[sample.labels["reason"]] += int(sample.value)
        assert sum(by_reason.values()) == len(dead) + 1
        assert by_reason["failed_alone"] == 1 + sum(kind == "failed_alone" for kind, _ in expected_by_offset.values())
        wait_for(lambda: runtime.metrics.consumer_lag._value.get() == 0, 30, "no lag left")  # type: ignore[attr-defined]
        assert all(state.ok for state in runtime.metrics.health.states())
        assert consumer.totals.dead_lettered == len(dead) + 1


@pytest.mark.postgres
def test_an_outage_dead_letters_nothing_shows_as_a_stall_and_stores_everything_after(
        broker: EmbeddedBroker, pg_url: str) -> None:
    SqlStore.from_url(pg_url).close()   # migrated while writable
    read_only = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-c%20default_transaction_read_only%3Don"
    settings = isolated_settings(broker.bootstrap_servers, read_only, topic_partitions=1, **LIMITS)
    messages = [("alerts", doc(f"o-{i}", i)) for i in range(20)]
    messages.insert(10, ("alerts", bypass("o-late", 9, occurred_at=LATE)))   # a poison, waiting behind the outage
    ensure_topics(settings.kafka_bootstrap_servers, [*settings.topics, settings.topic_dlq], 1)
    send(settings, messages)
    with consuming(settings) as (runtime, consumer):
        # The database answers, but takes no writes (a standby, say): an outage.
        wait_for(lambda: any(not s.ok and s.name == "consumer" for s in runtime.metrics.health.states()), 60,
                 "the consumer reported as failing")
        wait_for(lambda: runtime.metrics.consumer_lag._value.get() == 21, 30,  # type: ignore[attr-defined]
                 "the lag measured at the broker, not 0")
        (failing,) = [s for s in runtime.metrics.health.states() if s.name == "consumer"]
        assert "store_unavailable" in failing.reason and "read-only" in failing.reason
        assert consumer.totals.dead_lettered == 0 and runtime.store.count_events() == 0
        retries = {s.labels["cause"]: s.value for metric in runtime.metrics.batch_retries.collect()
                   for s in metric.samples if s.name.endswith("_total")}
        assert retries.get("store_unavailable", 0) >= 3 and "store_failed" not in retries
    # The database takes writes again: a new consumer in the same group stores everything.
    writable = settings.model_copy(update={"database_url": pg_url})
    with consuming(writable) as (runtime, consumer):
        wait_for(lambda: runtime.store.count_events() == 20, 120, "every event stored")
        got = dead_letters(writable, 1, timeout=60)
        assert [dict(m.headers)[DLQ_KIND] for m in got.values()] == [b"failed_alone"]
        wait_for(lambda: all(s.ok for s in runtime.metrics.health.states()), 30, "ready")
