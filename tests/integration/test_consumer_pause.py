"""Pausing past ``max_pending`` against the real broker and the real kafka-python: a
topic far ahead in event time is paused while the lagging one catches up, and every
paused partition is fetched again after it resumes (kafka-python 3.0.12 parked its
records for good without ``ingest/kafka.py``'s work-around)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from kafka import KafkaConsumer

from tests.conftest import T0
from tests.integration.kafka_helpers import event_json, produce
from tests.unit.test_consumer_bound import assert_in_event_time
from triage.broker import EmbeddedBroker
from triage.domain.event import Event
from triage.ingest.kafka import BatchConsumer, ConsumerConfig
from triage.ingest.kafka_admin import ensure_topics


def test_a_topic_an_hour_ahead_is_paused_and_resumed_and_nothing_is_stranded(broker: EmbeddedBroker,
                                                                             monkeypatch) -> None:
    uid = uuid.uuid4().hex[:8]
    alerts, logs = f"alerts-{uid}", f"logs-{uid}"
    ensure_topics(broker.bootstrap_servers, [alerts, logs, f"dlq-{uid}"], 1)
    count = 1500
    produce(broker.bootstrap_servers, alerts,
            (event_json(id=f"a{i}", occurred_at=(T0 + timedelta(seconds=3600 + i)).isoformat())
             for i in range(count)))
    produce(broker.bootstrap_servers, logs,
            (event_json(id=f"l{i}", kind="log", occurred_at=(T0 + timedelta(seconds=i)).isoformat())
             for i in range(count)))
    pauses = []
    original = KafkaConsumer.pause
    monkeypatch.setattr(KafkaConsumer, "pause", lambda self, *tps: (pauses.append(tps), original(self, *tps)))
    batches: list[list[Event]] = []
    consumer = BatchConsumer(
        ConsumerConfig(bootstrap_servers=broker.bootstrap_servers, group_id=f"g-{uid}", topics=[alerts, logs],
                       dlq_topic=f"dlq-{uid}", session_timeout_ms=6000, heartbeat_interval_ms=1000,
                       max_poll_records=100, max_pending=200, max_lag_wait_ms=120_000),
        lambda events, edges: batches.append(events))
    try:
        deadline = time.monotonic() + 90
        while sum(map(len, batches)) < 2 * count and time.monotonic() < deadline:
            consumer.poll_once()
    finally:
        consumer.close()
    handled = [e for batch in batches for e in batch]
    assert len(handled) == 2 * count, f"{len(handled)} of {2 * count} events handled: a partition stranded"
    assert_in_event_time(batches)
    assert pauses, "the bound was never reached: the test tests nothing"
