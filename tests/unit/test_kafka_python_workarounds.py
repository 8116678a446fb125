"""Two kafka-python 3.0.12 behaviours the consumer works around. A poll with nothing to
release blocks only briefly: when its fetcher has no answer buffered and no fetch in
flight at the instant it looks, the client's poll sleeps min(the poll's timeout,
``retry_backoff_ms``) before it fetches again, and records that arrive meanwhile wait out
the sleep (docs/benchmarks.md, "Latency at 1,000 events/s over 60 s": "A poll that
slept"). And a read that fails on a connection closed under it at shutdown is not logged
as an error with a traceback."""

from __future__ import annotations

import logging
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


def _record(message: str, exc: BaseException | None) -> logging.LogRecord:
    return logging.LogRecord("kafka.net.transport", logging.ERROR, __file__, 1, message, None,
                             (type(exc), exc, None) if exc is not None else None)


def test_a_read_on_a_transport_closed_under_it_is_not_logged_as_an_error(
        caplog: pytest.LogCaptureFixture) -> None:
    """kafka-python 3.0.12 logs a traceback when our thread closes a connection its network
    thread is about to read: ``triage.ingest.kafka`` drops that record, and only that."""
    transport = logging.getLogger("kafka.net.transport")
    closed = "<KafkaTCPTransport [none] (closed)>: Error receiving network data closing socket"
    with caplog.at_level(logging.ERROR, logger="kafka.net.transport"):
        transport.handle(_record(closed, AttributeError("'NoneType' object has no attribute 'recv'")))
        assert not caplog.records
        transport.handle(_record(closed.replace("(closed)", "(connected)"), AttributeError("recv")))
        transport.handle(_record(closed, ConnectionResetError("reset by peer")))
    assert len(caplog.records) == 2
