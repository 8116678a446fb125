"""Events accepted over HTTP go into Kafka, like every other event: the consumer group
decides them in order with the rest of their scope, and nothing is lost once the broker
has acknowledged them.

A broker that does not answer costs a webhook a few seconds at most, never the 30 to 60
of the client's defaults: every wait is bounded by ``timeout_s``, and a circuit remembers
the failure. While it is open every submit is refused at once (``SinkUnavailable`` with
the seconds to wait, the API's 503 with Retry-After); after the cool-down one submit is let
through as a probe, and the circuit closes when a probe is acknowledged. The producer of a
failed submit is dropped, and a new one is made for the next try: a producer that saw its
broker restart can be stuck for good (its idempotent producer id unknown to the broker).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError

from triage.domain.scope import scope_of
from triage.domain.health import Backoff
from triage.domain.event import Event, with_domain
from triage.ingest.topics import Topics

log = logging.getLogger(__name__)

# Below the producer's max_request_size and Kafka's default message.max.bytes (both about
# 1 MiB), with room for the record's own framing.
MAX_RECORD_BYTES = 1_000_000
DELIVERY_TIMEOUT_MS = 30_000


class SinkUnavailable(RuntimeError):
    """The events were not accepted; retry after ``retry_after_s`` seconds."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.retry_after_s = max(1, math.ceil(retry_after_s))


class EventTooLarge(ValueError):
    """One event is larger than a Kafka message may be; retrying cannot help."""


class Circuit:
    """Fails fast while a dependency is known to be down. Time is passed in.

    Closed: every call is admitted. ``failed`` opens it for a cool-down that doubles with
    each failed probe, up to ``max_cooldown_s``. Open: calls are refused until the
    cool-down ends; then one call at a time is admitted as the probe, and its ``succeeded``
    closes the circuit."""

    def __init__(self, first_cooldown_s: float = 1.0, max_cooldown_s: float = 10.0) -> None:
        self._backoff = Backoff(first_cooldown_s, max_cooldown_s)
        self._lock = threading.Lock()
        self._open_until: float | None = None
        self._probing = False
        self.reason = ""

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def admit(self, now: float) -> float | None:
        """None: go ahead (the caller then reports ``succeeded`` or ``failed``); else the
        seconds to wait before trying again."""
        with self._lock:
            if self._open_until is None:
                return None
            if self._probing:
                return max(self._open_until - now, 1.0)
            if now < self._open_until:
                return self._open_until - now
            self._probing = True
            return None

    def succeeded(self) -> None:
        with self._lock:
            was_open, self._open_until, self._probing = self._open_until is not None, None, False
            self._backoff.reset()
        if was_open:
            log.info("the broker takes webhook events again")

    def failed(self, now: float, reason: str) -> float:
        """Open (or keep open) the circuit; returns the cool-down."""
        with self._lock:
            was_open = self._open_until is not None
            if was_open and not self._probing and self._open_until is not None:
                # A call admitted before the circuit opened, failing late: already counted.
                return max(self._open_until - now, 1.0)
            cooldown = self._backoff.next()
            self._open_until, self._probing, self.reason = now + cooldown, False, reason
        if not was_open:
            log.warning("the broker does not take webhook events (%s): they get 503 until it does", reason)
        return cooldown

    def released(self) -> None:
        """The admitted call ended without saying anything about the dependency."""
        with self._lock:
            self._probing = False


class KafkaEventSink:
    def __init__(self, bootstrap_servers: str, topics: Topics, domain_labels: Sequence[str] = (), *,
                 timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.domain_labels = list(domain_labels)
        self.timeout_s = timeout_s
        self.circuit = Circuit()
        self._clock = clock
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()


    def _make_producer(self) -> KafkaProducer:
        ms = int(self.timeout_s * 1000)
        return KafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all", linger_ms=2,
                             client_id="triage-api",
                             # Each wait bounded by ``timeout_s``: connecting at start (bootstrap),
                             # waiting for metadata or buffer space in send() (max_block), one
                             # request. A record not delivered within delivery_timeout is failed,
                             # not sent later: what bounds closing a dropped producer.
                             bootstrap_timeout_ms=ms, max_block_ms=ms, request_timeout_ms=ms,
                             delivery_timeout_ms=DELIVERY_TIMEOUT_MS, reconnect_backoff_max_ms=1000)

    def submit(self, events: list[Event]) -> None:
        """Returns once every event is acknowledged by the broker (acks=all), within about
        ``timeout_s``. Raises ``InvalidEvent`` before sending any when one cannot name its
        domain, ``EventTooLarge`` for an event no Kafka message can hold, and
        ``SinkUnavailable`` when the broker did not acknowledge them all in time or is known
        to be down (some may still have been delivered: a retry may store a duplicate,
        which the correlator suppresses)."""
        events = [with_domain(e, self.domain_labels) for e in events]
        records = [(self.topics.for_kind(e.kind), scope_of(e).encode(), e.model_dump_json().encode()) for e in events]
        for i, (_, key, value) in enumerate(records):
            if len(key) + len(value) > MAX_RECORD_BYTES:   # refused before any is sent
                raise EventTooLarge(f"event {i} is {len(key) + len(value)} bytes as a Kafka message, "
                                    f"more than {MAX_RECORD_BYTES}")
        wait = self.circuit.admit(self._clock())
        if wait is not None:
            raise SinkUnavailable(f"the broker is unavailable ({self.circuit.reason}); retry", wait)
        start = self._clock()
        # The broker must make progress: each acknowledgement within ``timeout_s`` of the
        # wait for it starting; and the whole within ``timeout_s`` plus a millisecond per
        # event, so that 20,000 events on a slow machine are not taken for an outage.
        deadline = start + self.timeout_s + len(records) / 1000
        producer: KafkaProducer | None = None
        try:
            producer = self._producer_within(start + self.timeout_s)
            futures = [producer.send(topic, key=key, value=value) for topic, key, value in records]
            for future in futures:
                if not future.is_done:
                    future.get(timeout=max(min(self.timeout_s, deadline - self._clock()), 0.01))
        except MessageSizeTooLargeError as exc:
            self.circuit.released()
            raise EventTooLarge(f"an event is larger than a Kafka message may be: {exc}") from None
        except KafkaError as exc:
            reason = (str(exc) if str(exc).startswith(type(exc).__name__) else f"{type(exc).__name__}: {exc}")[:200]
            cooldown = self.circuit.failed(self._clock(), reason)
            self._discard(producer)
            raise SinkUnavailable(f"the broker did not accept the events in {self.timeout_s:.0f} s ({reason})",
                                  cooldown) from exc
        except BaseException:
            self.circuit.released()
            raise
        self.circuit.succeeded()

    def _producer_within(self, deadline: float) -> KafkaProducer:
        if not self._lock.acquire(timeout=max(deadline - self._clock(), 0.01)):
            raise _Busy("another request is still connecting to the broker")
        try:
            if self._producer is None:
                self._producer = self._make_producer()
            return self._producer
        finally:
            self._lock.release()

    def _discard(self, producer: KafkaProducer | None) -> None:
        """Drop a producer that failed; the next submit makes a new one. Closed in the
        background: closing waits for its unsent records to be delivered or to expire
        (``DELIVERY_TIMEOUT_MS``); kafka-python's close gives up without closing if asked to
        wait less."""
        if producer is None:
            return
        with self._lock:
            if self._producer is producer:
                self._producer = None
        threading.Thread(target=_close_quietly, args=(producer, DELIVERY_TIMEOUT_MS / 1000 + self.timeout_s),
                         name="triage-sink-close", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            _close_quietly(producer, self.timeout_s)


class _Busy(KafkaError):
    """Waiting for the producer lock outlasted the deadline: counted as the broker's failure,
    since what holds the lock is a connection attempt to it."""


def _close_quietly(producer: KafkaProducer, timeout_s: float) -> None:
    try:
        producer.close(timeout=timeout_s)
    except KafkaError as exc:   # a producer being dropped: nothing to do about its close failing
        log.debug("closing a dropped Kafka producer: %s", exc)
