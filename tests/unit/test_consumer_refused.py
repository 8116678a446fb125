"""A batch the store refuses for its values (``RefusedEvents``): the consumer stores the
rest, in event-time order, and dead-letters exactly the refused messages with the reason;
a failure of another kind while it does so leaves the whole batch to be retried. A batch
failing otherwise, again and again, because of one message (a poison pill): that message
is dead-lettered once it fails alone, twice, while the rest is stored; an outage, even one
that ends in the middle of that search, dead-letters nothing."""

from __future__ import annotations

from typing import Any

import pytest

import triage.ingest.kafka as kafka_module
from tests.unit.test_consumer_bound import ALERTS, LOGS, NoProducer, ScriptedClient, assert_in_event_time, at_seconds
from triage.ingest.errors import RefusedEvents
from triage.ingest.event import Event
from triage.ingest.kafka import DLQ_OFFSET, DLQ_REASON, BatchConsumer, ConsumerConfig

POISON = {"alerts-7", "logs-12"}


class DeadLetters(NoProducer):
    sent: list[tuple[str, Any, dict[str, bytes]]] = []

    def send(self, topic: str, key: Any, value: Any, headers: list[tuple[str, bytes]]) -> None:
        DeadLetters.sent.append((topic, value, dict(headers)))


class Store:
    """Refuses any batch holding a poisoned event, as PostgreSQL refuses a NUL character;
    ``fail_after`` refusals, it fails the way an unavailable database does."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.batches: list[list[Event]] = []
        self.refusals = 0
        self.fail_after = fail_after

    def __call__(self, events: list[Event], edges: list[Any]) -> None:
        if POISON & {e.id for e in events}:
            if self.fail_after is not None and self.refusals >= self.fail_after:
                self.fail_after = None
                raise ConnectionError("the database went away")
            self.refusals += 1
            raise RefusedEvents("text fields cannot contain NUL (0x00) bytes")
        self.batches.append(events)


def consumer_for(monkeypatch: pytest.MonkeyPatch, store: Store) -> BatchConsumer:
    client = ScriptedClient({ALERTS: [str(2 * i + 1).encode() for i in range(10)],
                             LOGS: [str(2 * i).encode() for i in range(10)]}, [ALERTS, LOGS])
    monkeypatch.setattr(kafka_module, "KafkaConsumer", lambda **_: client)
    monkeypatch.setattr(kafka_module, "KafkaProducer", DeadLetters)
    DeadLetters.sent = []
    return BatchConsumer(
        ConsumerConfig(bootstrap_servers="-", group_id="-", topics=["alerts", "logs"], dlq_topic="dlq",
                       max_idle_ms=0, max_poll_records=20, retry_backoff_s=0),
        store, decoder=at_seconds)


def test_the_refused_messages_are_dead_lettered_and_the_rest_stored_in_event_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store()
    consumer = consumer_for(monkeypatch, store)
    for _ in range(30):
        consumer.poll_once()
    stored = [e.id for batch in store.batches for e in batch]
    everything = {f"alerts-{2 * i + 1}" for i in range(10)} | {f"logs-{2 * i}" for i in range(10)}
    assert sorted(stored) == sorted(everything - POISON)
    assert_in_event_time(store.batches)
    assert sorted((topic, value) for topic, value, _ in DeadLetters.sent) == [("dlq", b"12"), ("dlq", b"7")]
    for _, _, headers in DeadLetters.sent:
        assert headers[DLQ_REASON] == b"the store refused it: text fields cannot contain NUL (0x00) bytes"
    assert {int(h[DLQ_OFFSET]) for _, _, h in DeadLetters.sent} == {3, 6}   # "7" and "12" in their partitions
    assert consumer.totals.dead_lettered == 2 and consumer.totals.handler_failures == 0
    assert consumer._stored[ALERTS].offset == 10 and consumer._stored[LOGS].offset == 10   # all of it: committed


def test_another_failure_while_isolating_retries_the_whole_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(fail_after=1)
    consumer = consumer_for(monkeypatch, store)
    while not store.refusals:
        consumer.poll_once()
    assert consumer.totals.handler_failures == 1 and not DeadLetters.sent and not consumer._stored
    for _ in range(30):
        consumer.poll_once()
    assert len({e.id for batch in store.batches for e in batch}) == 18   # what was stored before is kept once
    assert consumer.totals.dead_lettered == 2


class PoisonedHandler:
    """Raises on any batch holding a poisoned event (a bug that one event triggers)."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    def __call__(self, events: list[Event], edges: list[Any]) -> None:
        if POISON & {e.id for e in events}:
            raise ValueError("incident would hold no events")
        self.batches.append(events)


class Outage:
    """The first ``calls`` calls fail as an unreachable database does; then it stores."""

    def __init__(self, calls: int) -> None:
        self.left = calls
        self.batches: list[list[Event]] = []

    def __call__(self, events: list[Event], edges: list[Any]) -> None:
        if self.left > 0:
            self.left -= 1
            raise ConnectionError("connection refused")
        self.batches.append(events)


def drain(consumer: BatchConsumer, polls: int = 300) -> None:
    for _ in range(polls):
        consumer.poll_once()


def test_a_message_failing_on_its_own_is_dead_lettered_after_repeated_failures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    handler = PoisonedHandler()
    consumer = consumer_for(monkeypatch, handler)   # type: ignore[arg-type]
    drain(consumer)
    stored = {e.id for batch in handler.batches for e in batch}
    assert len(stored) == 18 and not stored & POISON
    assert sorted(value for _, value, _ in DeadLetters.sent) == [b"12", b"7"]
    for _, _, headers in DeadLetters.sent:
        assert headers[DLQ_REASON] == b"storing it failed on its own: ValueError: incident would hold no events"
    assert consumer.totals.handler_failures == consumer.config.isolate_after_failures - 1   # then isolated
    assert consumer._stored[ALERTS].offset == 10 and consumer._stored[LOGS].offset == 10


@pytest.mark.parametrize("calls", [*range(1, 16), 30, 60, 200])
def test_an_outage_dead_letters_nothing_even_if_it_ends_during_the_search(
        monkeypatch: pytest.MonkeyPatch, calls: int) -> None:
    handler = Outage(calls)
    consumer = consumer_for(monkeypatch, handler)   # type: ignore[arg-type]
    drain(consumer)
    assert not DeadLetters.sent and consumer.totals.dead_lettered == 0
    assert len({e.id for batch in handler.batches for e in batch}) == 20
