"""How long a fetched message waits for a partition of another topic that has nothing
for it (``max_idle_ms`` for a caught-up one, ``max_lag_wait_ms`` for a lagging one), on a
clock the test moves: the scripted client of test_consumer_bound in place of kafka-python."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import triage.ingest.kafka as kafka_module
from tests.unit.test_consumer_bound import ALERTS, LOGS, NoProducer, ScriptedClient, at_seconds
from triage.domain.event import Event
from triage.ingest.kafka import BatchConsumer, ConsumerConfig
from kafka.structs import TopicPartition

STEP_S = 0.003   # each poll_once moves the clock this far


class LateLogs(ScriptedClient):
    """The logs' records are on the broker (its high-water mark says so) but reach the
    client only from the ``arrive``-th poll on."""

    def __init__(self, messages: dict[TopicPartition, list[bytes]], arrive: int) -> None:
        super().__init__(messages, rotation=[ALERTS, LOGS])
        self.calls, self.arrive = 0, arrive

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        self.calls += 1
        if self.calls < self.arrive:
            self.paused_now.add(LOGS)
            try:
                return super().poll(timeout_ms, max_records)
            finally:
                self.paused_now.discard(LOGS)
        return super().poll(timeout_ms, max_records)


def polls(monkeypatch: pytest.MonkeyPatch, client: ScriptedClient, count: int) -> list[list[str]]:
    """The ids handled by each of ``count`` polls, 3 ms apart."""
    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(kafka_module, "time", SimpleNamespace(monotonic=lambda: clock.now))
    monkeypatch.setattr(kafka_module, "KafkaConsumer", lambda **_: client)
    monkeypatch.setattr(kafka_module, "KafkaProducer", NoProducer)
    handled: list[list[Event]] = []
    consumer = BatchConsumer(
        ConsumerConfig(bootstrap_servers="-", group_id="-", topics=["alerts", "logs"], dlq_topic="-",
                       max_idle_ms=5, max_lag_wait_ms=10**9),
        lambda events, edges: handled.append(events), decoder=at_seconds)
    per_poll = []
    for _ in range(count):
        before = len(handled)
        consumer.poll_once()
        per_poll.append([e.id for batch in handled[before:] for e in batch])
        clock.now += STEP_S
    return per_poll


def test_a_caught_up_topic_holds_a_fresh_front_and_lets_one_go_that_has_waited(monkeypatch: pytest.MonkeyPatch) -> None:
    # Poll 1 (t=0): the logs up to second 9, all of them; the alerts not read yet hold them.
    # Poll 2 (t=3 ms): the alerts at 10 and 11 let the logs go; then the logs are empty,
    # caught up, and hold the alerts. Poll 3 (t=6): the alerts were fetched 3 ms ago: held.
    # Poll 4 (t=9): fetched 6 ms ago, past the 5 ms of patience: released, though the logs
    # were found empty only 3 ms before (counting from that, they would wait another poll,
    # and in a stream of three topics each emptying in turn, out the patience of each).
    client = ScriptedClient({LOGS: [b"8", b"9"], ALERTS: [b"10", b"11"]}, rotation=[LOGS, ALERTS])
    handled = polls(monkeypatch, client, 4)
    assert handled == [[], ["logs-8", "logs-9"], [], ["alerts-10", "alerts-11"]]


def test_a_lagging_topic_holds_a_front_however_long_it_has_waited(monkeypatch: pytest.MonkeyPatch) -> None:
    # The logs hold more than is read of them (position < high-water mark), so however long
    # the alerts have waited, the logs may still hold something earlier.
    client = LateLogs({LOGS: [b"1", b"12"], ALERTS: [b"10", b"11"]}, arrive=6)
    handled = polls(monkeypatch, client, 8)
    assert handled[:5] == [[], [], [], [], []]   # the alerts waited 12 ms, far past max_idle_ms
    assert handled[5] == ["logs-1", "alerts-10", "alerts-11"]
    assert handled[6:] == [[], ["logs-12"]]   # then the alerts are caught up: 6 ms of patience
