"""The fetching process prepares each event for the correlating process while that process
stores the batch before (``triage.correlator_process.Ahead``, fed by
``BatchConsumer.fetch_ahead``): what it hands over is what it would have made at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

import triage.ingest.kafka as kafka_module
from tests.conftest import make_event
from tests.unit.test_consumer_bound import ALERTS, LOGS, NoProducer, ScriptedClient, at_seconds
from triage.correlator_process import Ahead, Made, make
from triage.domain.event import Event
from triage.ingest.kafka import BatchConsumer, ConsumerConfig


class Rows:
    """An ``event_rows`` that records its calls: (ids, received_at)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], datetime]] = []

    def __call__(self, events: Sequence[Event], received_at: datetime,
                 documents: dict[str, str]) -> dict[str, tuple[Any, ...]]:
        self.calls.append(([e.id for e in events], received_at))
        return {e.id: (e.id, received_at, documents[e.id]) for e in events}


def test_a_prepared_event_is_taken_once_with_what_making_it_now_gives() -> None:
    rows = Rows()
    ahead = Ahead(rows)
    events = [make_event(i, id=f"e{i}", kind="log", title=f"request {i} failed after {i * 7} ms") for i in range(3)]
    ahead.prepare(events)
    assert len(rows.calls) == 1 and rows.calls[0][0] == ["e0", "e1", "e2"]   # one call for the lot
    taken = ahead.take(events[1])
    assert taken[:3] == make(events[1])[:3]
    assert taken.row == ("e1", rows.calls[0][1], taken.document)   # bound when it was prepared
    assert len(ahead) == 2
    assert ahead.take(events[1]).row is None   # taken already: made now, its row left to the batch


def test_another_event_under_a_prepared_id_is_made_from_itself() -> None:
    ahead = Ahead()
    first = make_event(0, id="same", kind="log", title="disk full on node-1")
    second = make_event(5, id="same", kind="log", title="connection refused by db-2")
    ahead.prepare([first])
    assert ahead.take(second) == make(second) != make(first)


def test_events_already_taken_are_not_prepared_again_and_the_held_ones_are_bounded() -> None:
    ahead = Ahead(limit=3)
    events = [make_event(i, id=f"e{i}") for i in range(6)]
    ahead.prepare(events[:2], skip={"e0"})
    assert len(ahead) == 1
    ahead.prepare(events[2:5])
    assert len(ahead) == 4   # over the bound: the next preparation starts afresh
    ahead.prepare(events[5:])
    assert len(ahead) == 1 and isinstance(ahead.take(events[5]), Made)


def test_fetch_ahead_hands_on_what_was_decoded_since_it_last_did(monkeypatch: pytest.MonkeyPatch) -> None:
    client = ScriptedClient({ALERTS: [b"1", b"3", b"5"], LOGS: [b"0", b"2", b"4"]}, [ALERTS, LOGS])
    monkeypatch.setattr(kafka_module, "KafkaConsumer", lambda **_: client)
    monkeypatch.setattr(kafka_module, "KafkaProducer", NoProducer)
    consumer = BatchConsumer(
        ConsumerConfig(bootstrap_servers="-", group_id="-", topics=["alerts", "logs"], dlq_topic="-",
                       max_idle_ms=0, max_poll_records=3),
        lambda events, edges: None, decoder=at_seconds)
    assert [e.id for e in consumer.fetch_ahead()] == ["alerts-1", "alerts-3", "alerts-5", "logs-0", "logs-2", "logs-4"]
    assert consumer.fetch_ahead() == []
    client.messages[ALERTS] += [b"7"]
    client.messages[LOGS] += [b"6"]
    consumer.poll_once()   # its own poll decodes these, then it stores a batch
    assert sorted(e.id for e in consumer.fetch_ahead()) == ["alerts-7", "logs-6"]
    assert consumer.fetch_ahead() == []
    consumer.close()
