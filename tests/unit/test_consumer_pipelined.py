"""A handler that stores in another process (``Pipelined``, as ``CorrelatorProcess``) is
sent the next batch before the answer for the one before: offsets are committed only
for batches it says are stored, a batch sent after one that fails is put back and stored
after it, and closing waits for the batch still out."""

from __future__ import annotations

from typing import Any

import pytest

import triage.ingest.kafka as kafka_module
from tests.unit.test_consumer_bound import ALERTS, LOGS, NoProducer, at_seconds
from tests.unit.test_consumer_commits import RecordingClient
from triage.domain.event import Event, ServiceEdge
from triage.ingest.kafka import BatchConsumer, ConsumerConfig, Pipelined


class Remote:
    """Stores what it is sent, in order, when its answer is read, under the correlator
    process's rule: each batch names the one it follows, and one that does not follow
    the last batch stored is refused. The batches whose numbers are in ``failing`` fail,
    once each."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.failing = set(failing)
        self.sent: list[tuple[list[str], int]] = []   # ids, the batch it follows
        self.stored: list[list[str]] = []
        self.answers: list[int] = []
        self._last_sent = self._last_ok = -1          # as the parent knows them
        self._stored_last = -1                        # as the child knows it

    def __call__(self, events: list[Event], edges: list[ServiceEdge]) -> Any:
        return self.result(self.submit(events, edges))

    def submit(self, events: list[Event], edges: list[ServiceEdge]) -> int:
        self.sent.append(([e.id for e in events], self._last_sent))
        self._last_sent = len(self.sent) - 1
        return self._last_sent

    def result(self, ticket: int) -> Any:
        self.answers.append(ticket)
        ids, after = self.sent[ticket]
        if after != self._stored_last or ticket in self.failing:
            self.failing.discard(ticket)
            self._last_sent = self._last_ok
            raise RuntimeError(f"batch {ticket} not stored")
        self._stored_last = self._last_ok = ticket
        self.stored.append(ids)
        return None


def consumer_with(monkeypatch: pytest.MonkeyPatch, client: RecordingClient, handler: Any) -> BatchConsumer:
    monkeypatch.setattr(kafka_module, "KafkaConsumer", lambda **_: client)
    monkeypatch.setattr(kafka_module, "KafkaProducer", NoProducer)
    return BatchConsumer(
        ConsumerConfig(bootstrap_servers="-", group_id="-", topics=["alerts", "logs"], dlq_topic="-",
                       max_idle_ms=0, max_poll_records=4, commit_interval_ms=0, retry_backoff_s=0),
        handler, decoder=at_seconds)


def two_topics() -> RecordingClient:
    return RecordingClient({ALERTS: [str(2 * i + 1).encode() for i in range(10)],
                            LOGS: [str(2 * i).encode() for i in range(10)]}, [ALERTS, LOGS])


def test_the_next_batch_is_sent_before_the_answer_and_offsets_follow_the_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    client, remote = two_topics(), Remote()
    assert isinstance(remote, Pipelined)
    consumer = consumer_with(monkeypatch, client, remote)
    consumer.poll_once()
    assert len(remote.sent) == 1 and remote.answers == [] and client.async_commits == []
    consumer.poll_once()
    assert len(remote.sent) == 2 and remote.answers == [0]
    # batch 0 stored: its offsets, and not those of batch 1, sent but unanswered
    committed = client.async_commits[-1]
    for tp, offset in committed.items():
        topic = "alerts" if tp == ALERTS else "logs"
        stored = [int(i.split("-")[1]) for i in remote.stored[0] if i.startswith(topic)]
        in_flight = [int(i.split("-")[1]) for i in remote.sent[1][0] if i.startswith(topic)]
        # offsets count messages: alerts carry odd seconds 1, 3, ..., logs even 0, 2, ...
        to_offset = (lambda s: (s - 1) // 2) if tp == ALERTS else (lambda s: s // 2)
        assert offset == (to_offset(min(in_flight)) if in_flight else to_offset(max(stored)) + 1)
    for _ in range(20):
        consumer.poll_once()
    consumer.close()
    everything = [i for batch in remote.stored for i in batch]
    assert len(everything) == len(set(everything)) == 20
    assert client.sync_commits[-1] == {ALERTS: 10, LOGS: 10}


def test_a_batch_sent_after_a_failing_one_is_put_back_and_stored_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    client, remote = two_topics(), Remote(failing={1})
    consumer = consumer_with(monkeypatch, client, remote)
    for _ in range(30):
        consumer.poll_once()
    consumer.close()
    stored = [i for batch in remote.stored for i in batch]
    assert len(stored) == len(set(stored)) == 20   # each message stored once
    times = [[int(i.split("-")[1]) for i in batch] for batch in remote.stored]
    for before, after in zip(times, times[1:]):   # in event time: nothing stored past the failed batch
        assert max(before) <= min(after)
    assert remote.answers[:3] == [0, 1, 2]   # batch 2 was out when batch 1 failed, and was refused
    assert remote.sent[3][0] == remote.sent[1][0]   # batch 1 sent again, alone, before anything after it
    assert client.sync_commits[-1] == {ALERTS: 10, LOGS: 10}


def test_closing_waits_for_the_batch_still_out_and_commits_it(monkeypatch: pytest.MonkeyPatch) -> None:
    client, remote = two_topics(), Remote()
    consumer = consumer_with(monkeypatch, client, remote)
    consumer.poll_once()
    assert remote.answers == []
    consumer.close()
    assert remote.answers == [0] and remote.stored == [remote.sent[0][0]]
    assert client.sync_commits and sum(client.sync_commits[-1].values()) == len(remote.sent[0][0])
