"""When the consumer commits offsets: at most once per ``commit_interval_ms``, only what
is stored, everything stored at close, and nothing for a partition it lost."""

from __future__ import annotations

from typing import Any

import pytest

import triage.ingest.kafka as kafka_module
from tests.unit.test_consumer_bound import ALERTS, LOGS, NoProducer, ScriptedClient, at_seconds
from triage.domain.event import Event
from triage.ingest.kafka import BatchConsumer, ConsumerConfig


class RecordingClient(ScriptedClient):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.async_commits: list[dict[Any, int]] = []
        self.sync_commits: list[dict[Any, int]] = []
        self.listener: Any = None

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    def commit_async(self, offsets: Any, callback: Any) -> None:
        self.async_commits.append({tp: o.offset for tp, o in offsets.items()})

    def commit(self, offsets: Any) -> None:
        self.sync_commits.append({tp: o.offset for tp, o in offsets.items()})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(kafka_module.time, "monotonic", clock)
    return clock


def consumer_for(monkeypatch: pytest.MonkeyPatch, client: RecordingClient, handled: list[Event],
                 interval_ms: int) -> BatchConsumer:
    monkeypatch.setattr(kafka_module, "KafkaConsumer", lambda **_: client)
    monkeypatch.setattr(kafka_module, "KafkaProducer", NoProducer)
    return BatchConsumer(
        ConsumerConfig(bootstrap_servers="-", group_id="-", topics=["alerts", "logs"], dlq_topic="-",
                       max_idle_ms=0, max_poll_records=5, commit_interval_ms=interval_ms),
        lambda events, edges: handled.extend(events), decoder=at_seconds)


def two_topics() -> RecordingClient:
    return RecordingClient({ALERTS: [str(2 * i + 1).encode() for i in range(20)],
                            LOGS: [str(2 * i).encode() for i in range(20)]}, [ALERTS, LOGS])


def test_offsets_are_committed_once_per_interval_and_all_at_close(
        monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    client, handled = two_topics(), []
    consumer = consumer_for(monkeypatch, client, handled, interval_ms=1000)
    for _ in range(40):
        consumer.poll_once()
    assert len(handled) == 40
    # The first batch's offsets go at once; the rest wait for the interval to pass.
    assert len(client.async_commits) == 1 and sum(client.async_commits[0].values()) <= 10
    clock.now += 0.999
    consumer.poll_once()
    assert len(client.async_commits) == 1
    clock.now += 0.001
    consumer.poll_once()   # nothing left to release: a due commit still goes out
    assert client.async_commits[-1] == {ALERTS: 20, LOGS: 20}
    consumer.close()
    assert client.sync_commits == [{ALERTS: 20, LOGS: 20}]


def test_with_no_interval_every_batch_is_committed(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    client, handled = two_topics(), []
    consumer = consumer_for(monkeypatch, client, handled, interval_ms=0)
    batches = 0
    while len(handled) < 40:
        before = len(handled)
        consumer.poll_once()
        batches += len(handled) > before
    assert len(client.async_commits) == batches
    latest: dict[Any, int] = {}
    for commit in client.async_commits:   # each names the partitions its batch came from
        latest.update(commit)
    assert latest == {ALERTS: 20, LOGS: 20}


def test_a_lost_partition_is_not_committed(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    client, handled = two_topics(), []
    consumer = consumer_for(monkeypatch, client, handled, interval_ms=1000)
    for _ in range(40):
        consumer.poll_once()
    client.listener.on_partitions_revoked([ALERTS])   # its new owner reads from the last commit
    clock.now += 1
    consumer.poll_once()
    assert client.async_commits[-1] == {LOGS: 20}
    consumer.close()
    assert client.sync_commits == [{LOGS: 20}]


class LosingClient(RecordingClient):
    """Holds ALERTS until ``lose`` is called (a rebalance met mid-batch)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.lost = False

    def assignment(self) -> set[Any]:
        return {LOGS} if self.lost else {ALERTS, LOGS}

    def lose(self) -> None:
        self.lost = True
        self.listener.on_partitions_revoked([ALERTS])


def test_a_partition_lost_while_its_batch_is_stored_elsewhere_is_not_committed_nor_kept(
        monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    # With a correlator process the consumer fetches ahead while the child stores a batch
    # (``fetch_ahead``), and a rebalance may come then: the batch is stored, the partition
    # lost is neither committed nor put back when the batch fails.
    client = LosingClient({ALERTS: [str(2 * i + 1).encode() for i in range(20)],
                           LOGS: [str(2 * i).encode() for i in range(20)]}, [ALERTS, LOGS])
    handled: list[Event] = []
    failing = [True]

    def store(events: list[Event], edges: Any) -> None:
        if not client.lost:
            client.lose()
        if failing[0]:
            raise RuntimeError("the store failed")
        handled.extend(events)

    monkeypatch.setattr(kafka_module, "KafkaConsumer", lambda **_: client)
    monkeypatch.setattr(kafka_module, "KafkaProducer", NoProducer)
    consumer = BatchConsumer(
        ConsumerConfig(bootstrap_servers="-", group_id="-", topics=["alerts", "logs"], dlq_topic="-",
                       max_idle_ms=0, max_poll_records=5, commit_interval_ms=0, retry_backoff_s=0),
        store, decoder=at_seconds)
    while not client.lost:
        consumer.poll_once()
    assert not handled and ALERTS not in consumer._pending   # failed: nothing of ALERTS put back
    failing[0] = False
    for _ in range(20):
        consumer.poll_once()
    assert handled and all(ALERTS not in commit for commit in client.async_commits)
    consumer.close()
    assert ALERTS not in client.sync_commits[-1]
