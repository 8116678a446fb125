"""Events accepted over HTTP go into Kafka, like every other event: the consumer group
decides them in order with the rest of their scope, and nothing is lost once the broker
has acknowledged them."""

from __future__ import annotations

import threading

from kafka import KafkaProducer
from kafka.errors import KafkaError

from triage.correlation.keys import scope_of
from triage.ingest.event import Event, EventKind, with_domain
from triage.settings import Settings


class SinkUnavailable(RuntimeError):
    pass


class KafkaEventSink:
    def __init__(self, settings: Settings, *, timeout_s: float = 10.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _topic(self, event: Event) -> str:
        s = self.settings
        return {EventKind.log: s.topic_logs, EventKind.span: s.topic_traces}.get(event.kind, s.topic_alerts)

    def submit(self, events: list[Event]) -> None:
        """Returns once every event is acknowledged by the broker (acks=all). Raises
        ``InvalidEvent`` before sending any when one cannot name its domain."""
        events = [with_domain(e, self.settings.domain_labels) for e in events]
        try:
            with self._lock:
                if self._producer is None:
                    self._producer = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap_servers,
                                                   acks="all", linger_ms=2, client_id="triage-api")
                futures = [self._producer.send(self._topic(e), key=scope_of(e).encode(),
                                               value=e.model_dump_json().encode()) for e in events]
                self._producer.flush(timeout=self.timeout_s)
            for future in futures:
                future.get(timeout=self.timeout_s)
        except KafkaError as exc:
            raise SinkUnavailable(f"the broker did not accept the events: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close()
                self._producer = None
