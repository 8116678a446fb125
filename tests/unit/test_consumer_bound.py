"""The consumer's bound on fetched-but-unreleased messages (``max_pending``), with a
scripted client in place of kafka-python: which partition a poll returns is then fixed,
where against a broker it depends on how the client orders its buffered fetches."""

from __future__ import annotations

import itertools
from collections import namedtuple
from datetime import timedelta
from typing import Any

import pytest

import triage.ingest.kafka as kafka_module
from tests.conftest import T0, make_event
from triage.domain.event import Event
from triage.ingest.kafka import BatchConsumer, ConsumerConfig, Decoded
from kafka.structs import TopicPartition

Message = namedtuple("Message", "topic partition offset key value headers")
ALERTS, LOGS = TopicPartition("alerts", 0), TopicPartition("logs", 0)


class ScriptedClient:
    """Each partition's messages, handed out by ``poll`` one partition per call in turn
    (``rotation``), never from a paused partition; positions and high-water marks as a
    broker would report them."""

    def __init__(self, messages: dict[TopicPartition, list[bytes]], rotation: list[TopicPartition]) -> None:
        self.messages = messages
        self.next = dict.fromkeys(messages, 0)
        self.rotation = itertools.cycle(rotation)
        self.paused_now: set[TopicPartition] = set()
        self.most_paused = 0

    def subscribe(self, topics: list[str], listener: Any) -> None:
        pass

    def assignment(self) -> set[TopicPartition]:
        return set(self.messages)

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Message]]:
        for _ in range(len(self.messages) * 2):
            tp = next(self.rotation)
            start = self.next[tp]
            if tp in self.paused_now or start >= len(self.messages[tp]):
                continue
            values = self.messages[tp][start:start + max_records]
            self.next[tp] = start + len(values)
            return {tp: [Message(tp.topic, tp.partition, start + i, None, v, []) for i, v in enumerate(values)]}
        return {}

    def pause(self, *tps: TopicPartition) -> None:
        self.paused_now.update(tps)
        self.most_paused = max(self.most_paused, len(self.paused_now))

    def resume(self, *tps: TopicPartition) -> None:
        self.paused_now.difference_update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_now)

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.messages[tp])

    def end_offsets(self, partitions: list[TopicPartition], timeout_ms: int | None = None) -> dict[TopicPartition, int]:
        return {tp: len(self.messages[tp]) for tp in partitions}

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int:
        return self.next[tp]

    def commit_async(self, offsets: Any, callback: Any) -> None:
        pass

    def commit(self, offsets: Any) -> None:
        pass

    def close(self, autocommit: bool = False) -> None:
        pass


class NoProducer:
    def __init__(self, **_: Any) -> None:
        pass

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def assert_in_event_time(batches: list[list[Event]]) -> None:
    """Batch after batch in event-time order (within a batch the pipeline orders them)."""
    for before, after in itertools.pairwise(batches):
        assert max(e.occurred_at for e in before) <= min(e.occurred_at for e in after)


def at_seconds(topic: str, value: bytes | None) -> Decoded:
    assert value is not None
    seconds = int(value)
    return [make_event(seconds, id=f"{topic}-{seconds}", kind="alert" if topic == "alerts" else "log")], []


def consume(monkeypatch: pytest.MonkeyPatch, client: ScriptedClient, polls: int,
            **config: Any) -> list[Event]:
    """The events handled in ``polls`` polls, checked to come in event-time order."""
    monkeypatch.setattr(kafka_module, "KafkaConsumer", lambda **_: client)
    monkeypatch.setattr(kafka_module, "KafkaProducer", NoProducer)
    batches: list[list[Event]] = []
    consumer = BatchConsumer(
        ConsumerConfig(bootstrap_servers="-", group_id="-", topics=["alerts", "logs"], dlq_topic="-",
                       max_idle_ms=0, max_lag_wait_ms=10**9, **config),   # a stall would not end
        lambda events, edges: batches.append(events), decoder=at_seconds)
    for _ in range(polls):
        consumer.poll_once()
    assert_in_event_time(batches)
    return sorted((e for batch in batches for e in batch), key=lambda e: e.occurred_at)


def test_a_topic_far_ahead_in_event_time_does_not_starve_the_one_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    # The alerts run an hour ahead of the logs, and the client hands out two polls of
    # alerts for each of logs: the alerts fill the bound long before the logs catch up.
    client = ScriptedClient({ALERTS: [str(3600 + i).encode() for i in range(200)],
                             LOGS: [str(i).encode() for i in range(100)]},
                            rotation=[ALERTS, ALERTS, LOGS])
    handled = consume(monkeypatch, client, polls=300, max_pending=10, max_poll_records=5)
    assert [e.id for e in handled] == [f"logs-{i}" for i in range(100)] + [f"alerts-{3600 + i}" for i in range(200)]
    assert client.most_paused >= 1 and not client.paused_now


def test_under_the_bound_nothing_is_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    client = ScriptedClient({ALERTS: [str(2 * i + 1).encode() for i in range(50)],
                             LOGS: [str(2 * i).encode() for i in range(50)]},
                            rotation=[ALERTS, LOGS])
    handled = consume(monkeypatch, client, polls=100, max_pending=1000, max_poll_records=5)
    assert [e.occurred_at for e in handled] == [T0 + timedelta(seconds=s) for s in range(100)]
    assert client.most_paused == 0
