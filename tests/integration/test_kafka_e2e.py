"""Events through the real broker, consumer and store, read back through the real HTTP API."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.kafka_helpers import (
    event_json, isolated_settings, produce, read_topic, running, wait_for,
)
from triage.broker import EmbeddedBroker
from triage.domain.event import Event
from triage.ingest.kafka import DLQ_KIND, DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_TOPIC
from triage.service import Runtime

pytestmark = pytest.mark.integration


@pytest.fixture
def runtime(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Runtime]:
    with running(broker.bootstrap_servers, tmp_path / "t.db") as rt:
        yield rt


def test_events_in_incidents_out_through_the_api(runtime: Runtime, broker: EmbeddedBroker) -> None:
    s = runtime.settings
    produce(broker.bootstrap_servers, s.topic_alerts, [
        event_json(id="k1", fingerprint="f1"),
        event_json(id="k2", fingerprint="f1", occurred_at="2026-03-11T14:01:00Z"),
        event_json(id="k3", fingerprint="f2", title="Latency", occurred_at="2026-03-11T14:02:00Z"),
    ])
    produce(broker.bootstrap_servers, s.topic_logs, [
        event_json(id="k4", kind="log", source="otel", severity="error", title="connection refused",
                   occurred_at="2026-03-11T14:02:30Z"),
    ])
    wait_for(lambda: runtime.store.count_events() == 4, 30, "4 events stored")
    base = f"http://127.0.0.1:{runtime.api_port}"
    incidents = httpx.get(f"{base}/incidents").json()
    assert incidents["total"] == 1
    detail = httpx.get(f"{base}/incidents/{incidents['items'][0]['id']}").json()
    assert [e["membership"]["action"] for e in detail["events"]] == ["opened", "suppressed", "attached", "attached"]
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready", "checks": {"store": "ok", "broker": "ok"}}
    metrics = httpx.get(f"{base}/metrics").text
    assert f'triage_events_consumed_total{{topic="{s.topic_alerts}"}} 3.0' in metrics


def test_poison_message_goes_to_the_dlq_with_its_reason_and_the_next_is_processed(
        runtime: Runtime, broker: EmbeddedBroker) -> None:
    s = runtime.settings
    produce(broker.bootstrap_servers, s.topic_alerts, [
        b"this is not json", event_json(id="bad-sev", severity="spicy"), event_json(id="good-1"),
    ])
    wait_for(lambda: runtime.store.get_event("good-1") is not None, 30, "the good event")
    dead = read_topic(broker.bootstrap_servers, s.topic_dlq, expected=2)
    dead.sort(key=lambda m: m.value)  # unkeyed: they may sit on different partitions
    assert [m.value for m in dead] == [b"this is not json", event_json(id="bad-sev", severity="spicy")]
    headers = [dict(m.headers) for m in dead]
    assert b"not JSON" in headers[0][DLQ_REASON]
    assert headers[1][DLQ_REASON] == b"severity: Value error, unknown severity 'spicy'; use one of critical, error, warning, info, debug (or a known synonym)"
    assert headers[1][DLQ_TOPIC] == s.topic_alerts.encode()
    # Unkeyed messages may land on any partition; the headers say which, and the offset there.
    assert int(headers[1][DLQ_PARTITION]) in range(s.topic_partitions)
    assert int(headers[1][DLQ_OFFSET]) >= 0
    assert runtime.store.count_events() == 1
    assert runtime.consumer is not None and runtime.consumer.totals.dead_lettered == 2


@pytest.mark.postgres
def test_an_event_postgresql_refuses_goes_to_the_dlq_and_its_batch_is_stored(
        broker: EmbeddedBroker, pg_url: str) -> None:
    # A NUL character is valid JSON, and PostgreSQL's text cannot hold one: a batch
    # retried as it is would be refused forever, and its partition would stall. Validation
    # refuses it now, naming the field (the store's own refusal, for values nobody
    # foresaw, is in tests/integration/test_poison.py).
    with running(broker.bootstrap_servers, pg_url, api=False) as runtime:
        s = runtime.settings
        refused = event_json(id="nul-fp", fingerprint="f\u0000", occurred_at="2026-03-11T14:00:40Z")
        produce(broker.bootstrap_servers, s.topic_alerts, [
            event_json(id="ok-1", fingerprint="f1"), refused,
            event_json(id="ok-2", fingerprint="f2", occurred_at="2026-03-11T14:01:00Z"),
        ], key=lambda _: b"global")
        produce(broker.bootstrap_servers, s.topic_logs, [   # in a log line's text, NUL is shown as U+FFFD
            event_json(id="nul-log", kind="log", source="otel", severity="error", title="bad\u0000byte",
                       occurred_at="2026-03-11T14:00:30Z")], key=lambda _: b"global")
        wait_for(lambda: runtime.store.count_events() == 3, 60, "the three events PostgreSQL accepts")
        [dead] = read_topic(broker.bootstrap_servers, s.topic_dlq, expected=1)
        assert dead.value == refused
        reason = dict(dead.headers)[DLQ_REASON].decode()
        assert reason.startswith("fingerprint: ") and "NUL" in reason
        assert dict(dead.headers)[DLQ_KIND] == b"validation"
        assert runtime.store.get_event("nul-fp") is None
        log = runtime.store.get_event("nul-log")
        assert log is not None and log.event.title == "bad\ufffdbyte"
        assert runtime.consumer is not None and runtime.consumer.totals.dead_lettered == 1


def test_a_failing_store_loses_nothing_and_stores_nothing_twice(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """The handler fails twice (a database outage): the released messages go back to the
    front of their queues, nothing is committed, and the retries store every event once."""
    runtime = Runtime.build(isolated_settings(broker.bootstrap_servers, f"sqlite:///{tmp_path / 'f.db'}"))
    consumer = runtime.make_consumer()
    pipeline, failures = consumer.handler, []

    def flaky(events: list[Event], edges: list[Any]) -> Any:
        if len(failures) < 2:
            failures.append(len(events))
            raise RuntimeError("database unavailable")
        return pipeline(events, edges)

    consumer.handler = flaky
    s = runtime.settings
    produce(broker.bootstrap_servers, s.topic_alerts,
            [event_json(id=f"a{i}", fingerprint=f"f{i % 3}", occurred_at=f"2026-03-11T14:{i:02d}:00Z")
             for i in range(30)])
    produce(broker.bootstrap_servers, s.topic_logs,
            [event_json(id=f"l{i}", kind="log", source="otel", severity="error", title=f"timeout {i}",
                        occurred_at=f"2026-03-11T14:{i:02d}:30Z") for i in range(30)])
    thread = threading.Thread(target=consumer.run, args=(runtime.stop,))
    thread.start()
    try:
        wait_for(lambda: runtime.store.count_events() == 60, 60, "60 events stored")
    finally:
        runtime.stop.set()
        thread.join(30)
        runtime.close()
    assert len(failures) == 2 and failures[0] > 0
    assert consumer.totals.handler_failures == 2
    assert len(runtime.store.all_memberships()) == 60   # one decision per event, none twice


def test_a_stored_batch_is_freed_when_stored_not_by_the_cyclic_collector(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    """kafka-python leaves the frames of a poll that waits out its timeout in a reference
    cycle; the consumer must hold no batch in them, or every batch outlives its commit
    until the next cyclic collection (more and longer GC pauses at 1k events/s)."""
    runtime = Runtime.build(isolated_settings(broker.bootstrap_servers, f"sqlite:///{tmp_path / 'g.db'}",
                                              kafka_poll_timeout_ms=50))
    consumer = runtime.make_consumer()
    pipeline, stored = consumer.handler, []

    def remember(events: list[Event], edges: list[Any]) -> Any:
        stored.extend(weakref.ref(e) for e in events)
        return pipeline(events, edges)

    consumer.handler = remember
    try:
        while not consumer.totals.assigned:
            consumer.poll_once()
        produce(broker.bootstrap_servers, runtime.settings.topic_logs,
                [event_json(id=f"l{i}", kind="log", source="otel", severity="error", title=f"timeout {i}")
                 for i in range(5)])
        gc.disable()
        deadline = time.monotonic() + 30
        while len(stored) < 5 and time.monotonic() < deadline:
            consumer.poll_once()
        consumer.poll_once()   # and one poll that waits out its timeout
        alive = [ref() for ref in stored if ref() is not None]
    finally:
        gc.enable()
        consumer.close()   # run() would, on its way out; this test drives poll_once itself
        runtime.close()
    assert len(stored) == 5
    assert alive == []
