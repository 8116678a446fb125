"""Kafka in: a batch consumer with at-least-once delivery and a dead-letter topic.

The order of effects for one poll (the whole of "nothing lost, nothing twice"):

1. poll a batch;
2. decode and validate each message; failures are produced to the DLQ with the
   original bytes and the reason in headers, and the producer is flushed;
3. hand the good events to the handler, which stores them (one transaction,
   idempotent by event id) and returns only when they are durable;
4. commit the consumed offsets.

A crash between any two steps redelivers the batch; the handler's idempotency
makes the repeat harmless. If the handler raises, nothing is committed: the
consumer seeks back to the batch's first offsets and tries again after a pause.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from kafka.structs import TopicPartition
from opentelemetry import trace

from triage.ingest.decode import decode_event
from triage.ingest.errors import DecodeError
from triage.ingest.event import Event

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# Header names on dead-lettered messages.
DLQ_REASON = "triage.error.reason"
DLQ_TOPIC = "triage.source.topic"
DLQ_PARTITION = "triage.source.partition"
DLQ_OFFSET = "triage.source.offset"

Decoder = Callable[[str, bytes | None], list[Event]]
Handler = Callable[[list[Event]], Any]


def decode_json(topic: str, value: bytes | None) -> list[Event]:
    """The default decoder: one generic-JSON event per message, whatever the topic."""
    return [decode_event(value)]


class ConsumerObserver(Protocol):
    def batch_decoded(self, topic: str, ok: int, dead: int) -> None: ...
    def lag(self, messages: int) -> None: ...


@dataclass(frozen=True)
class ConsumerConfig:
    bootstrap_servers: str
    group_id: str
    topics: list[str]
    dlq_topic: str
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_records: int = 2_000
    poll_timeout_ms: int = 500
    retry_backoff_s: float = 1.0
    client_id: str = "triage"


@dataclass
class ConsumerTotals:
    batches: int = 0
    events: int = 0
    dead_lettered: int = 0
    handler_failures: int = 0
    assigned: set[TopicPartition] = field(default_factory=set)


def ensure_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int) -> None:
    """Create the topics triage reads and writes if they are missing."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="triage-admin")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in dict.fromkeys(topics) if t not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another replica created it first
    finally:
        admin.close()


class BatchConsumer:
    def __init__(self, config: ConsumerConfig, handler: Handler, *, decoder: Decoder = decode_json,
                 observer: ConsumerObserver | None = None) -> None:
        self.config = config
        self.handler = handler
        self.decoder = decoder
        self.observer = observer
        self.totals = ConsumerTotals()
        self._consumer = KafkaConsumer(
            *config.topics,
            bootstrap_servers=config.bootstrap_servers,
            group_id=config.group_id,
            client_id=config.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_poll_records=config.max_poll_records,
        )
        self._producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers, client_id=config.client_id,
                                       acks="all", linger_ms=5)

    # -- the loop --------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; the batch in hand is finished and committed first."""
        try:
            while not stop.is_set():
                self.poll_once()
        finally:
            self.close()

    def poll_once(self) -> int:
        """One poll -> one handler call -> one commit. Returns the number of events handled."""
        records = self._consumer.poll(timeout_ms=self.config.poll_timeout_ms,
                                      max_records=self.config.max_poll_records)
        self._note_assignment()
        if not records:
            self._report_lag()
            return 0
        first_offsets = {tp: msgs[0].offset for tp, msgs in records.items()}
        with tracer.start_as_current_span("ingest.decode") as span:
            events = self._decode_and_dead_letter(records)
            span.set_attribute("triage.events", len(events))
        try:
            if events:
                self.handler(events)
        except Exception:  # noqa: BLE001 - any storage failure means: do not commit, retry
            self.totals.handler_failures += 1
            log.exception("storing a batch of %d events failed; it will be retried", len(events))
            for tp, offset in first_offsets.items():
                self._consumer.seek(tp, offset)
            time.sleep(self.config.retry_backoff_s)
            return 0
        with tracer.start_as_current_span("ingest.commit"):
            try:
                self._consumer.commit()
            except CommitFailedError:
                # The group rebalanced under us; the new owner redelivers, and the store dedups.
                log.warning("offset commit failed after a rebalance; the batch will be redelivered")
        self.totals.batches += 1
        self.totals.events += len(events)
        self._report_lag()
        return len(events)

    def _decode_and_dead_letter(self, records: dict[TopicPartition, list[Any]]) -> list[Event]:
        events: list[Event] = []
        dead = 0
        for tp, messages in records.items():
            ok_before, dead_before = len(events), dead
            for msg in messages:
                try:
                    events.extend(self.decoder(tp.topic, msg.value))
                except DecodeError as exc:
                    self._dead_letter(msg, exc.reason)
                    dead += 1
            if self.observer:
                self.observer.batch_decoded(tp.topic, len(events) - ok_before, dead - dead_before)
        if dead:
            self._producer.flush()  # dead letters are durable before the offsets move on
            self.totals.dead_lettered += dead
        return events

    def _dead_letter(self, msg: Any, reason: str) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
        headers = list(msg.headers or []) + [
            (DLQ_REASON, reason.encode()),
            (DLQ_TOPIC, msg.topic.encode()),
            (DLQ_PARTITION, str(msg.partition).encode()),
            (DLQ_OFFSET, str(msg.offset).encode()),
        ]
        self._producer.send(self.config.dlq_topic, key=msg.key, value=msg.value, headers=headers)

    # -- introspection -----------------------------------------------------------------

    def _note_assignment(self) -> None:
        assigned = set(self._consumer.assignment())
        if assigned != self.totals.assigned:
            log.info("assigned partitions: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
            self.totals.assigned = assigned

    def lag(self) -> int:
        """Messages behind the high watermark on the partitions this member holds."""
        total = 0
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                continue
            try:
                total += max(0, high - self._consumer.position(tp))
            except KafkaError:
                continue
        return total

    def _report_lag(self) -> None:
        if self.observer:
            self.observer.lag(self.lag())

    def close(self) -> None:
        try:
            self._producer.flush()
            self._producer.close()
        finally:
            self._consumer.close()


class BrokerProbe:
    """Readiness: does the broker answer a metadata request? Reuses one admin client."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            try:
                if self._admin is None:
                    self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers,
                                                   client_id="triage-probe", request_timeout_ms=3000)
                self._admin.list_topics()
            except Exception:
                if self._admin is not None:
                    self._admin.close()
                    self._admin = None
                raise

    def close(self) -> None:
        with self._lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
