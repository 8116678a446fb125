"""A poll with nothing to release blocks only briefly: kafka-python 3.0.12's poll, when its
fetcher has no answer buffered and no fetch in flight at the instant it looks, sleeps
min(the poll's timeout, ``retry_backoff_ms``) before it fetches again, and records that
arrive meanwhile wait out the sleep (docs/benchmarks.md, "Latency at 1,000 events/s over
60 s": "A poll that slept")."""

from __future__ import annotations

from typing import Any

import kafka
import pytest
from kafka.structs import TopicPartition

import triage.ingest.kafka as kafka_module
from tests.unit.test_consumer_bound import NoProducer, at_seconds
from tests.unit.test_consumer_commits import RecordingClient
from triage.ingest.kafka import BatchConsumer, ConsumerConfig
from triage.settings import Settings


class WaitRecordingClient(RecordingClient):
    def __init__(self) -> None:
        tps = [TopicPartition("alerts", 0), TopicPartition("logs", 0)]
        super().__init__({tp: [] for tp in tps}, tps)
        self.timeouts: list[int] = []

    def poll(self, timeout_ms: int, max_records: int) -> Any:
        self.timeouts.append(timeout_ms)
        return super().poll(timeout_ms, max_records)


def test_an_idle_poll_blocks_less_than_the_client_would_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    client = WaitRecordingClient()
    monkeypatch.setattr(kafka_module, "KafkaConsumer", lambda **_: client)
    monkeypatch.setattr(kafka_module, "KafkaProducer", NoProducer)
    settings = Settings()
    consumer = BatchConsumer(
        ConsumerConfig(bootstrap_servers="-", group_id="-", topics=["alerts", "logs"], dlq_topic="-",
                       poll_timeout_ms=settings.kafka_poll_timeout_ms),
        lambda events, edges: None, decoder=at_seconds)
    for _ in range(3):
        consumer.poll_once()
    sleep_ms = kafka.KafkaConsumer.DEFAULT_CONFIG["retry_backoff_ms"]
    assert client.timeouts and max(client.timeouts) <= sleep_ms / 10
    assert ConsumerConfig("-", "-", ["alerts"], "-").poll_timeout_ms == settings.kafka_poll_timeout_ms
