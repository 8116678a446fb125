"""Kafka in: a batch consumer with at-least-once delivery and a dead-letter topic.

The order of effects for one poll (the whole of "nothing lost, nothing twice"):

1. poll a batch;
2. decode and validate each message; failures are produced to the DLQ with the
   original bytes and the reason in headers, and the producer is flushed;
3. release the messages that are due in event time (see ``BatchConsumer``) and
   hand their events to the handler, which stores them (one transaction,
   idempotent by event id) and returns only when they are durable;
4. commit, per partition, the offset of the first message not yet stored, without
   waiting for the broker's answer (Kafka's own advice: asynchronous commits in the
   loop, a synchronous one at close), at most once per ``commit_interval_ms``; a commit
   that fails or comes late only means redelivery.

A crash between any two steps redelivers the batch; the handler's idempotency
makes the repeat harmless. If the handler raises, nothing is committed: the
released messages go back to the front of their queues and are tried again after a
pause that grows while the failure lasts. A batch the store refuses for its values, or
one failing again and again while the store answers, is stored in parts instead, and the
messages that fail on their own are dead-lettered (``BatchConsumer._store_in_parts``):
one bad message must not stall its partition, and an outage dead-letters nothing.

``BatchConsumer`` is one class on purpose: fetching, the event-time release, storing
with isolation, committing and the rebalance listener share one set of per-partition
positions, and the order of effects above can only be checked when they are read
together. What it holds between fetch and store is ``triage.ingest.pending``; the
topics and the readiness probe are ``triage.ingest.kafka_admin``.
"""

from __future__ import annotations

import heapq
import math
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.structs import OffsetAndMetadata, TopicPartition
from opentelemetry import trace

from triage.ingest.decode import decode_event
from triage.ingest.pending import Fetched, Pending
from triage.domain.event import ServiceEdge
from triage.ingest.otlp import TopicKind, decode_kafka_value
from triage.domain.errors import DecodeError, InvalidEvent, RefusedEvents, StoreUnavailable, TooLarge
from triage.domain.event import DEFAULT_LIMITS, Event, Limits, with_domain
from triage.domain.stages import Stage, StageClock

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# Header names on dead-lettered messages.
DLQ_REASON = "triage.error.reason"
DLQ_TOPIC = "triage.source.topic"
DLQ_PARTITION = "triage.source.partition"
DLQ_OFFSET = "triage.source.offset"
DLQ_KIND = "triage.error.kind"   # a ``DeadLetterReason``: the reason header's kind, for tools


class DeadLetterReason(str, Enum):
    """Why a message was dead-lettered, as a bounded set (a metric label, a header); the
    reason header says the rest in words."""

    decode = "decode"                # not JSON, not OTLP, or the decoder failed on it
    validation = "validation"        # a field missing, wrong, or past a limit
    too_large = "too_large"          # more bytes than the message limit
    store_refused = "store_refused"  # the database refused its values (a data exception)
    failed_alone = "failed_alone"    # storing it failed on its own while the store took writes


class RetryCause(str, Enum):
    """Why a batch is retried: the store could take nothing (an outage), or the batch
    failed while the store answered (searched for a poison after a few tries)."""

    unavailable = "store_unavailable"
    failed = "store_failed"

Decoded = tuple[list[Event], list[ServiceEdge]]
Decoder = Callable[[str, bytes | None], Decoded]
# Stores a batch durably (events, and the caller -> callee edges traces revealed).
Handler = Callable[[list[Event], list[ServiceEdge]], Any]


@runtime_checkable
class Pipelined(Protocol):
    """A handler that stores elsewhere (``triage.correlator_process``) and can be sent the
    next batch while it stores this one: ``submit`` sends, ``result`` waits for the answer
    of a batch sent (in the order sent) and raises what storing it raised. A batch sent
    while the one before it fails is not stored: its ``result`` raises."""

    def __call__(self, events: list[Event], edges: list[ServiceEdge], /) -> Any: ...
    def submit(self, events: list[Event], edges: list[ServiceEdge], /) -> Any: ...
    def result(self, ticket: Any, /) -> Any: ...


@dataclass
class _Flight:
    """A batch sent to a ``Pipelined`` handler whose answer is still to be read."""

    released: dict[TopicPartition, list[Fetched]]
    events: int
    ticket: Any


def decode_json(topic: str, value: bytes | None) -> Decoded:
    """The simplest decoder: one generic-JSON event per message, whatever the topic."""
    return [decode_event(value)], []


def decoder_for(topic_kinds: dict[str, TopicKind], domain_labels: Sequence[str] = (),
                limits: Limits = DEFAULT_LIMITS) -> Decoder:
    """Generic JSON on every topic, and OTLP (protobuf or JSON, as the OpenTelemetry
    Collector's Kafka exporter writes it) on the logs and traces topics, within
    ``limits`` (the webhooks' own: what one intake accepts, every intake accepts); each
    event in the correlation domain its labels name (``with_domain``)."""
    def decode(topic: str, value: bytes | None) -> Decoded:
        events, edges = decode_kafka_value(topic_kinds.get(topic, "alerts"), value, limits)
        if domain_labels:
            events = [with_domain(e, domain_labels) for e in events]
        return events, edges
    return decode


class ConsumerObserver(Protocol):
    """What the consumer tells the process (``triage.services.telemetry.Metrics``): counts for
    /metrics, and whether it is stalled, for /readyz."""

    def batch_decoded(self, topic: str, ok: int) -> None: ...
    def message_dead_lettered(self, topic: str, reason: DeadLetterReason) -> None: ...
    def batch_retried(self, cause: RetryCause) -> None: ...
    # A batch has failed ``unready_after_failures`` times in a row / one is stored again.
    def stalled(self, reason: str) -> None: ...
    def flowing(self) -> None: ...
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
    # How long one poll may block when nothing waits to be released. Short on purpose:
    # kafka-python 3.0.12's poll, when at the instant it looks its fetcher holds no answer
    # and has no fetch in flight (one answered, the next not sent yet), sleeps
    # min(this, its retry_backoff_ms of 100 ms) instead of sending the next fetch, and
    # what arrives meanwhile waits out the sleep: about twice a second at 1,000 events/s,
    # and the p99 from produce to decoding was 120 ms where a bare consumer's is 37
    # (docs/benchmarks.md, "Latency at 1,000 events/s over 60 s": "A poll that slept").
    # Polling again every 10 ms costs an idle consumer about a twentieth of a core.
    poll_timeout_ms: int = 10
    # A failed batch is retried after retry_backoff_s, doubled after each failure in a row
    # up to max_retry_backoff_s.
    retry_backoff_s: float = 1.0
    max_retry_backoff_s: float = 8.0
    # A batch failing this many times in a row while the store answers is stored in parts,
    # to find a message that fails on its own (a poison pill); one the store refuses for
    # its values (RefusedEvents) is searched at once.
    isolate_after_failures: int = 3
    # A batch failing this many times in a row makes the process not ready (/readyz).
    unready_after_failures: int = 3
    max_idle_ms: int = 5
    max_lag_wait_ms: int = 5_000
    fetch_max_wait_ms: int = 10
    max_pending: int = 50_000  # fetched, not yet due: past it the partitions holding them are paused
    commit_interval_ms: int = 1_000   # stored offsets are committed this often (and at close)
    lag_report_interval_s: float = 1.0
    lag_timeout_ms: int = 2_000   # the broker's answer to "end offsets?", at most
    client_id: str = "triage"


@dataclass
class ConsumerTotals:
    batches: int = 0
    events: int = 0
    dead_lettered: int = 0
    handler_failures: int = 0
    assigned: set[TopicPartition] = field(default_factory=set)


class BatchConsumer:
    """Consumes alerts, logs and traces *aligned in event time*.

    A scope's events are keyed to the same partition number in every topic, and the
    range assignor gives partition p of every topic to the same member. Within that
    member, messages of partition p are released in event-time order across topics:
    a message waits until every topic's partition p has been read at least up to its
    time (or is caught up: see ``_read_up_to``). So a service's
    logs and its alerts are decided in the order they happened, whichever topic is
    fetched first, and one member gives the same incidents as several.
    """

    def __init__(self, config: ConsumerConfig, handler: Handler, *, decoder: Decoder = decode_json,
                 observer: ConsumerObserver | None = None, probe: Callable[[], None] | None = None) -> None:
        """``probe`` raises when the store cannot take writes now (``SqlStore.probe``): what
        tells a store that is down from a message that fails on its own when that message
        is all there is to store. Without one, only ``StoreUnavailable`` and ``OSError``
        say the store is down."""
        self.config = config
        self.handler = handler
        self.decoder = decoder
        self.observer = observer
        self.probe = probe
        self.totals = ConsumerTotals()
        self.stages = StageClock()   # the fetch's and the decoding's CPU (triage bench reads it)
        self._stop: threading.Event | None = None   # what run() was given: a backoff ends when it is set
        self._failing: str | None = None   # the failure the batch in hand is retried for, as logged
        self._flowing_reported = False
        self._pending: dict[TopicPartition, Pending] = defaultdict(Pending)
        # Events decoded since ``fetch_ahead`` last handed them on (kept once it is used).
        self._decoded: list[Event] = []
        self._keep_decoded = False
        self._in_flight: _Flight | None = None   # sent to a ``Pipelined`` handler, its answer unread
        self._waiting_since: dict[TopicPartition, float] = {}
        self._released_last = False
        self._failed_in_a_row = 0   # handler failures since the last batch stored
        self._pausing = False   # some partition paused by _pause_over_bound
        self._lag_reported_at = -math.inf
        # Per partition, the offset after the last message stored: what close() commits.
        self._stored: dict[TopicPartition, OffsetAndMetadata] = {}
        self._uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}   # stored since the last commit
        self._committed_at = -math.inf
        self._consumer = KafkaConsumer(
            bootstrap_servers=config.bootstrap_servers,
            group_id=config.group_id,
            client_id=config.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_poll_records=config.max_poll_records,
            partition_assignment_strategy=[RangePartitionAssignor],
            # The broker may hold an empty fetch this long: it bounds the latency of a quiet stream.
            fetch_max_wait_ms=config.fetch_max_wait_ms,
            # kafka-python waits 30 s for a broker at start and backs off reconnects up to
            # about 30 s: a broker that comes back would be noticed that much later.
            bootstrap_timeout_ms=_BROKER_WAIT_MS, reconnect_backoff_max_ms=_RECONNECT_MAX_MS,
        )
        self._consumer.subscribe(config.topics,
                                 listener=_DropRevoked(self._pending, self._stored, self._uncommitted))
        self._producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers, client_id=config.client_id,
                                       acks="all", linger_ms=5, bootstrap_timeout_ms=_BROKER_WAIT_MS,
                                       reconnect_backoff_max_ms=_RECONNECT_MAX_MS)

    # -- the loop --------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; the batch in hand is finished and committed first."""
        self._stop = stop
        try:
            while not stop.is_set():
                self.poll_once()
        finally:
            self.close()

    def poll_once(self) -> int:
        """One poll -> release what is due -> one handler call -> one commit.
        Returns the number of events handled."""
        # Three calls and no locals, on purpose: a kafka-python poll that waits out its
        # timeout leaves its frames, and through them every caller's frame, in a reference
        # cycle. A batch held in this frame would then live until the next cyclic
        # collection instead of being freed when it is stored, and the collections came
        # more often and took longer (docs/benchmarks.md,
        # "Why the hot path is built as it is").
        self._fetch(self._poll_timeout_ms())
        return self._handle(self._release())

    def fetch_ahead(self) -> list[Event]:
        """Fetch and decode what the client holds now, without waiting for more: what a
        handler that stores in another process (``triage.correlator_process``) runs while
        that process works, so decoding the next batch overlaps storing this one. A
        rebalance it meets is handled as in any poll (``_DropRevoked``); the batch in the
        other process is stored and only its partitions still held are committed.
        Returns the events decoded since the last call (by it or by a poll), oldest
        fetched first, for the handler to prepare for their batch meanwhile too
        (``CorrelatorProcess.prepare``)."""
        self._keep_decoded = True
        self._fetch(0)
        decoded, self._decoded = self._decoded, []
        return decoded

    def _poll_timeout_ms(self) -> int:
        # Block for new data only when nothing fetched is waiting to be released; when
        # something waits on a peer, poll until the first peer's patience runs out.
        if self._in_flight is not None:
            return 0   # a batch's answer is waiting
        if not any(self._pending.values()):
            return self.config.poll_timeout_ms
        return 0 if self._released_last else min(self._patience_left_ms(), self.config.poll_timeout_ms)

    def _fetch(self, timeout_ms: int) -> None:
        """Drain what the client has already fetched (up to a bound), not just one poll's
        worth: a partition's records sitting unread in the client's buffer must count as
        read before the others are released past them.

        Past ``max_pending`` the partitions holding fetched messages are paused (Kafka
        Streams' way) and only the others, the empty ones, fetch: a topic read ahead in
        event time fills the bound while another, lagging, holds every release back,
        and only the lagging one's records let them go. Without it the loop stopped
        fetching and spun until ``max_lag_wait_ms`` ran out (1M events at 2,000/s)."""
        self._pause_over_bound()
        while True:
            _restore_parked(self._consumer)
            since = self.stages.now()
            records = self._consumer.poll(timeout_ms=timeout_ms, max_records=self.config.max_poll_records)
            since = self.stages.add(Stage.fetch, since)
            self._note_assignment()
            if not records:
                return
            with tracer.start_as_current_span("ingest.decode"):
                self._decode_and_dead_letter(records)
            self.stages.add(Stage.decode, since)
            if self._pause_over_bound() or sum(len(r) for r in records.values()) < self.config.max_poll_records:
                return   # over the bound; or the client's buffer is empty
            timeout_ms = 0

    def _pause_over_bound(self) -> bool:
        """Pause the partitions holding fetched messages while more than ``max_pending``
        wait, resume them below it (and any whose queue has emptied: an empty paused
        partition would hold its peers back). Returns whether the bound is reached."""
        over = sum(len(q) for q in self._pending.values()) >= self.config.max_pending
        if not over and not self._pausing:
            return False   # the usual case, asked before every poll: no question to the client
        assigned = self._consumer.assignment()
        holding = {tp for tp in assigned if self._pending.get(tp)} if over else set()
        paused = set(self._consumer.paused())   # the client's own record: a rebalance unpauses
        if paused - holding:
            self._consumer.resume(*sorted(paused - holding))
        if holding - paused:
            self._consumer.pause(*sorted(holding - paused))
        self._pausing = bool(holding)
        return over

    def _handle(self, released: dict[TopicPartition, list[Fetched]]) -> int:
        if isinstance(self.handler, Pipelined):
            return self._handle_pipelined(self.handler, released)
        return self._handle_now(released)

    def _handle_pipelined(self, handler: Pipelined, released: dict[TopicPartition, list[Fetched]]) -> int:
        """Send the batch released now before reading the answer for the one sent before
        it, so that the other process starts on it as soon as it has committed that one.
        Offsets are committed for a batch once its answer says it is stored. When a batch
        fails, the one sent after it is refused there and put back, and the failed one
        takes the path of any failing batch (``_handle_now``: retried, or searched for
        what the store refuses). While batches fail, one is sent at a time."""
        self._released_last = bool(released)
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            if released and not self._failed_in_a_row:
                self._in_flight = self._send(handler, released)
                return 0
            return self._handle_now(released)
        following = self._send(handler, released) if released else None
        try:
            handler.result(flight.ticket)
        except Exception:  # noqa: BLE001 - sorted below as any failing batch is
            if following is not None:
                try:
                    handler.result(following.ticket)
                except Exception:  # noqa: BLE001 - refused, as it follows a failed batch
                    pass
                self._put_back(following.released)
            return self._handle_now(flight.released)
        self._in_flight = following
        return self._stored_batch(flight.released, flight.events,
                                  following.released if following is not None else None)

    def _send(self, handler: Pipelined, released: dict[TopicPartition, list[Fetched]]) -> _Flight:
        events, edges = _contents(_items(released))
        return _Flight(released, len(events), handler.submit(events, edges))

    def _stored_batch(self, released: dict[TopicPartition, list[Fetched]], events: int,
                      following: dict[TopicPartition, list[Fetched]] | None = None) -> int:
        """A released batch is stored: its offsets committed (when due), counted."""
        self._stored_again()
        self._commit(released, following)
        self.totals.batches += 1
        self.totals.events += events
        self._report_lag()
        return events

    def _put_back(self, released: dict[TopicPartition, list[Fetched]]) -> None:
        held = self._consumer.assignment()   # a fetch ahead may have met a rebalance
        for tp, items in released.items():
            if tp in held:
                self._pending[tp].put_back(items)

    def _handle_now(self, released: dict[TopicPartition, list[Fetched]]) -> int:
        self._released_last = bool(released)
        if not released:
            self._commit_due()
            self._report_lag()
            return 0
        items = _items(released)
        events = sum(len(item.events) for item in items)
        try:
            self._store_batch(items)
        except _Retry as retry:
            self._retry_later(released, events, retry)
            return 0
        return self._stored_batch(released, events)

    def _store_batch(self, items: list[Fetched]) -> None:
        """Store the released messages, or raise ``_Retry``. A batch the store refuses for
        its values is searched for the messages it refuses at once; one that fails otherwise
        while the store answers is searched after ``isolate_after_failures`` tries."""
        try:
            self._store_items(items)
            return
        except RefusedEvents as exc:
            failure: Exception = exc
        except Exception as exc:  # noqa: BLE001 - any failure: retried, or searched for a poison
            if self._store_is_down(exc):
                raise _Retry(RetryCause.unavailable, exc) from exc
            if self._failed_in_a_row + 1 < self.config.isolate_after_failures:
                raise _Retry(RetryCause.failed, exc) from exc
            failure = exc
        self._store_in_parts(items, failure)

    def _store_in_parts(self, items: list[Fetched], failure: Exception) -> None:
        """Store a failing batch in halves, oldest first (so in event time), until each
        message that fails stands alone, and dead-letter those with the reason: one the
        store refuses for its values (``RefusedEvents``) at once; one that fails otherwise,
        after a second try alone once the rest is stored (a failure it shared with the
        others is gone by then). Whatever mix of failures the batch holds, that takes at
        most about two store calls per poison and halving step (2·k·log2 n for k poisons
        in n messages).

        A failure that says the store is down (``_store_is_down``: it raised
        ``StoreUnavailable``, or the probe fails after it) ends the search with ``_Retry``
        and dead-letters nothing: an outage is nobody's poison. Parts stored before it are
        skipped by id when the batch is retried. ``failure`` is how the whole batch has
        just failed (not a sign of an outage): the search starts from its halves."""
        items = sorted(items, key=lambda item: item.time or _START_OF_TIME)
        dead: list[tuple[Fetched, DeadLetterReason, str]] = []
        suspects: list[Fetched] = []

        def store(part: list[Fetched]) -> None:
            try:
                self._store_items(part)
            except RefusedEvents as exc:
                failed(part, exc)
            except Exception as exc:  # noqa: BLE001 - a poison may fail any way; the probe tells an outage
                if self._store_is_down(exc):
                    raise _Retry(RetryCause.unavailable, exc) from exc
                failed(part, exc)

        def failed(part: list[Fetched], exc: Exception) -> None:
            if len(part) > 1:
                store(part[:len(part) // 2])
                store(part[len(part) // 2:])
            elif isinstance(exc, RefusedEvents):
                dead.append((part[0], DeadLetterReason.store_refused, f"the store refused it: {exc.reason}"))
            else:
                suspects.append(part[0])

        failed(items, failure)
        for item in suspects:
            try:
                self._store_items([item])
            except RefusedEvents as exc:
                dead.append((item, DeadLetterReason.store_refused, f"the store refused it: {exc.reason}"))
            except Exception as exc:  # noqa: BLE001 - as above
                if self._store_is_down(exc):
                    raise _Retry(RetryCause.unavailable, exc) from exc
                log.error("a message failed alone, twice, while the store took writes: %s", _failure(exc),
                          exc_info=exc)
                dead.append((item, DeadLetterReason.failed_alone, f"storing it failed on its own: {_failure(exc)}"))
        for item, kind, reason in dead:
            self._dead_letter(item.message, kind, reason)
        if dead:
            self._producer.flush()   # durable before the offsets are committed

    def _store_is_down(self, exc: Exception) -> bool:
        """Whether ``exc`` came from a store that cannot take writes now, rather than from
        what it was given: the store says so (``StoreUnavailable``: connection lost, disk
        full, read-only...; or an ``OSError``), or the probe fails right after."""
        if isinstance(exc, (StoreUnavailable, OSError)):
            return True
        if self.probe is None:
            return False
        try:
            self.probe()
        except Exception:  # noqa: BLE001 - a probe failing in any way means: no writes now
            return True
        return False

    def _retry_later(self, released: dict[TopicPartition, list[Fetched]], events: int, retry: _Retry) -> None:
        """Put the batch back, say so once per change of failure (a traceback only for one
        that is not an outage), and wait before the next try: longer while it lasts."""
        self._failed_in_a_row += 1
        self.totals.handler_failures += 1
        failure = _failure(retry.error)
        if failure != self._failing:
            exc_info = retry.error if retry.cause is RetryCause.failed and self._failing is None else None
            log.warning("storing a batch of %d events failed (%s); it will be retried: %s",
                        events, retry.cause.value, failure, exc_info=exc_info)
            self._failing = failure
        if self.observer:
            self.observer.batch_retried(retry.cause)
            if self._failed_in_a_row >= self.config.unready_after_failures:
                self.observer.stalled(f"a batch cannot be stored ({retry.cause.value}), retrying: {failure}")
            self._flowing_reported = False
        self._put_back(released)
        self._report_lag()
        delay = min(self.config.retry_backoff_s * 2 ** (self._failed_in_a_row - 1), self.config.max_retry_backoff_s)
        if self._stop is not None:
            self._stop.wait(delay)
        elif delay > 0:
            time.sleep(delay)

    def _stored_again(self) -> None:
        if self._failing is not None:
            log.info("stored the batch after %d failed attempts", self._failed_in_a_row)
            self._failing = None
        self._failed_in_a_row = 0
        if self.observer and not self._flowing_reported:
            self.observer.flowing()
            self._flowing_reported = True

    def _store_items(self, items: list[Fetched]) -> None:
        events, edges = _contents(items)
        if events or edges:
            self.handler(events, edges)

    def _decode_and_dead_letter(self, records: dict[TopicPartition, list[Any]]) -> None:
        """Decode into the pending queues (and onto the list ``fetch_ahead`` hands on, when
        it is asked for); dead-letter what does not decode."""
        dead = False
        now = time.monotonic()
        for tp, messages in records.items():
            ok = 0
            queue = self._pending[tp]
            for msg in messages:
                try:
                    events, edges = self.decoder(tp.topic, msg.value)
                except DecodeError as exc:
                    self._dead_letter(msg, _kind_of(exc), exc.reason)
                    queue.append(Fetched(msg.offset, [], [], None))
                    dead = True
                    continue
                except Exception as exc:  # noqa: BLE001 - a decoder bug one message triggers must not stop the loop
                    log.error("the decoder failed on %s[%d]@%d", tp.topic, tp.partition, msg.offset, exc_info=exc)
                    self._dead_letter(msg, DeadLetterReason.decode, f"the decoder failed: {_failure(exc)}")
                    queue.append(Fetched(msg.offset, [], [], None))
                    dead = True
                    continue
                latest = max([e.occurred_at for e in events] + [e.observed_at for e in edges], default=None)
                queue.append(Fetched(msg.offset, events, edges, latest, msg, now))
                ok += len(events)
                if self._keep_decoded:
                    self._decoded.extend(events)
            if self.observer:
                self.observer.batch_decoded(tp.topic, ok)
        if dead:
            self._producer.flush()  # dead letters are durable before their offsets can be committed

    def _release(self) -> dict[TopicPartition, list[Fetched]]:
        """Take from the pending queues what no other topic can still precede, oldest
        first, at most ``max_poll_records`` messages: one store transaction.

        A partition's queue is taken from its front while the front is not later than
        the watermark of its partition number (the least of how far each topic's
        partition is read); across queues the earliest front goes first (a k-way merge),
        so the work is proportional to what is released, not to what waits. A front
        fetched ``max_idle_ms`` ago or more is held only by the partitions that are not
        caught up (``_read_up_to``)."""
        by_number: dict[int, list[TopicPartition]] = defaultdict(list)
        for tp in self._consumer.assignment():
            by_number[tp.partition].append(tp)
        now = time.monotonic()
        limits: dict[TopicPartition, _Limits] = {}
        for tps in by_number.values():
            if not any(self._pending.get(tp) for tp in tps):
                for tp in tps:  # nothing is held back, so nobody is waiting
                    self._waiting_since.pop(tp, None)
                continue
            read = [self._read_up_to(tp, now) for tp in tps]
            watermark = _Limits(min(r.any_front for r in read), min(r.waited_front for r in read))
            for tp in tps:
                if self._pending.get(tp):
                    limits[tp] = watermark
        heads: list[tuple[datetime, TopicPartition]] = []   # ties: by topic, then partition
        waited = now - self.config.max_idle_ms / 1000

        def push(tp: TopicPartition) -> None:
            queue = self._pending[tp]
            if queue:
                front = queue[0]
                head = front.time or _START_OF_TIME
                limit = limits[tp]
                if head <= limit.any_front or (front.fetched_at <= waited and head <= limit.waited_front):
                    heapq.heappush(heads, (head, tp))

        for tp in limits:
            push(tp)
        released: dict[TopicPartition, list[Fetched]] = {}
        budget = self.config.max_poll_records
        while heads and budget > 0:
            _, tp = heapq.heappop(heads)
            released.setdefault(tp, []).append(self._pending[tp].popleft())
            budget -= 1
            push(tp)
        return released

    def _patience_left_ms(self) -> int:
        """Until the first hold by a caught-up partition ends (its own patience, or that of
        a waiting front), at most 5 ms: a fixed poll interval made a held message wait
        up to one interval past its peer's patience. A deadline already past belongs to a
        lagging partition (a caught-up one would have been let go): 5 ms, not a spin."""
        now = time.monotonic()
        idle = self.config.max_idle_ms / 1000
        deadlines = [*self._waiting_since.values(), *(q[0].fetched_at for q in self._pending.values() if q)]
        ahead = [left for since in deadlines if (left := since + idle - now) > 0]
        return min(5, math.ceil(min(ahead, default=0.005) * 1000))

    def _read_up_to(self, tp: TopicPartition, now: float) -> _Limits:
        """How far in event time this partition is known to be read: for any front, and
        for a front that has waited ``max_idle_ms`` since it was fetched.

        An empty queue whose partition the broker still holds records for (lagging) holds
        its peers back until they arrive, for at most ``max_lag_wait_ms``; one that is
        caught up holds them ``max_idle_ms`` at most, which may be 0 (Kafka Streams'
        max.task.idle.ms, with KIP-695's distinction): a little patience there keeps the
        order when a producer writes one topic a moment after another, at that much latency.
        That patience is counted from whichever is earlier: the partition found empty, or
        the front fetched. A producer batches each topic on its own, so the topics of one
        partition number empty one after another; counting from each emptying alone, a
        front waited out the patience of every topic in turn and then the next batches
        (the p99 from decoding to release was 23 ms at 1,000 events/s: docs/benchmarks.md,
        "Latency at 1,000 events/s over 60 s").
        """
        latest = self._pending[tp].latest()
        if latest is not None:
            self._waiting_since.pop(tp, None)
            return _Limits(latest, latest)
        since = self._waiting_since.setdefault(tp, now)
        high = self._consumer.highwater(tp)
        position = self._position(tp)
        lagging = high is None or position is None or position < high
        patience = self.config.max_lag_wait_ms if lagging else self.config.max_idle_ms
        if (now - since) * 1000 >= patience:
            return _Limits(_END_OF_TIME, _END_OF_TIME)
        return _Limits(_START_OF_TIME, _START_OF_TIME if lagging else _END_OF_TIME)

    def _commit(self, released: dict[TopicPartition, list[Fetched]],
                following: dict[TopicPartition, list[Fetched]] | None = None) -> None:
        """Commit (when due) the offsets after ``released``, stored; ``following``: the
        batch sent after it, not stored yet, whose messages are no longer pending."""
        offsets = {}
        held = self._consumer.assignment()   # a fetch ahead may have met a rebalance
        for tp, items in released.items():
            if tp not in held:
                continue   # the new owner reads it again from the last commit; the store skips it
            queue = self._pending.get(tp)
            if following is not None and following.get(tp):
                next_offset = following[tp][0].offset
            else:
                next_offset = queue[0].offset if queue else items[-1].offset + 1
            offsets[tp] = OffsetAndMetadata(next_offset, "", -1)
        self._stored.update(offsets)
        self._uncommitted.update(offsets)
        self._commit_due()

    def _commit_due(self) -> None:
        """Commit what was stored since the last commit, if ``commit_interval_ms`` has
        passed. Each commit is a request the broker answers and the client's network
        thread handles: one after every batch was about a hundred a second at 1,000
        events/s, on the cores the broker shares (docs/benchmarks.md, "Why the hot path
        is built as it is").
        Later is safe: the store skips the events it already holds when a crash or a
        rebalance redelivers them."""
        now = time.monotonic()
        if not self._uncommitted or (now - self._committed_at) * 1000 < self.config.commit_interval_ms:
            return
        offsets, self._committed_at = dict(self._uncommitted), now
        self._uncommitted.clear()
        with tracer.start_as_current_span("ingest.commit"):
            # Waiting for the broker's answer held up every event behind the batch.
            self._consumer.commit_async(offsets=offsets, callback=_log_failed_commit)

    def _dead_letter(self, msg: Any, kind: DeadLetterReason, reason: str) -> None:
        log.warning("dead-lettering %s[%d]@%d (%s): %s", msg.topic, msg.partition, msg.offset, kind.value,
                    reason[:500])
        headers = list(msg.headers or []) + [
            (DLQ_REASON, reason.encode()),
            (DLQ_KIND, kind.value.encode()),
            (DLQ_TOPIC, msg.topic.encode()),
            (DLQ_PARTITION, str(msg.partition).encode()),
            (DLQ_OFFSET, str(msg.offset).encode()),
        ]
        self._producer.send(self.config.dlq_topic, key=msg.key, value=msg.value, headers=headers)
        self.totals.dead_lettered += 1
        if self.observer:
            self.observer.message_dead_lettered(msg.topic, kind)

    # -- introspection -----------------------------------------------------------------

    def _note_assignment(self) -> None:
        assigned = set(self._consumer.assignment())
        if assigned != self.totals.assigned:
            log.info("assigned partitions: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
            self.totals.assigned = assigned

    def lag(self) -> int | None:
        """Messages not yet stored (or dead-lettered) on the partitions this member holds:
        each partition's end offset, asked of the broker now, less the first offset not yet
        stored (the stuck batch's, while one is retried). Not the client's cached high
        watermark alone, which only a fetch refreshes, and the lag was reported only after
        a stored batch: a stalled consumer showed 0. The cached mark still counts when it
        is higher: the embedded Tansu answers "end offsets?" with the last record batch's
        first offset + 1. None when the broker does not answer in time."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return 0
        try:
            ends = self._consumer.end_offsets(assigned, timeout_ms=self.config.lag_timeout_ms)
        except KafkaError:
            return None
        total = 0
        for tp in assigned:
            end = max(ends.get(tp) or 0, self._consumer.highwater(tp) or 0)
            queue = self._pending.get(tp)
            first = queue[0].offset if queue else self._position(tp)
            if first is None and tp in self._stored:
                first = self._stored[tp].offset
            if first is not None:
                total += max(0, end - first)
        return total

    def _position(self, tp: TopicPartition) -> int | None:
        """The next offset to fetch, if known now: kafka-python's position() would otherwise
        block, without limit, on a partition whose committed offset is still being looked up
        (just after a rebalance), and stall the whole loop."""
        try:
            position: int | None = self._consumer.position(tp, timeout_ms=50)
        except KafkaError:
            return None
        return position

    def _report_lag(self) -> None:
        # lag() asks the client for every partition's position, which kafka-python 3
        # validates per call: after every batch (or every empty poll) it became most of
        # the loop's time. A gauge scraped every few seconds needs it once a second.
        now = time.monotonic()
        if self.observer and now - self._lag_reported_at >= self.config.lag_report_interval_s:
            self._lag_reported_at = now
            lag = self.lag()
            if lag is not None:   # the broker did not answer: the gauge keeps its last value
                self.observer.lag(lag)

    def close(self) -> None:
        flight, self._in_flight = self._in_flight, None
        if flight is not None and isinstance(self.handler, Pipelined):
            try:   # the batch sent last: its offsets are committed below once it is stored
                self.handler.result(flight.ticket)
                self._commit(flight.released)
            except Exception:  # noqa: BLE001 - not stored: read again after the restart
                log.warning("the last batch sent was not stored; it will be read again", exc_info=True)
        try:
            # Bounded: with the broker down, an unbounded flush would hold a shutdown or the
            # consumer's replacement for ever. Dead letters not flushed were never
            # committed past, so they are produced again when their messages are read again.
            self._producer.flush(timeout=_CLOSE_FLUSH_S)
            self._producer.close(timeout=_CLOSE_FLUSH_S)
        finally:
            try:
                if self._stored:
                    self._consumer.commit(offsets=dict(self._stored))
            except KafkaError as exc:
                log.warning("final offset commit failed (%s); the last batches will be redelivered", exc)
            finally:
                self._consumer.close(autocommit=False)


_BROKER_WAIT_MS = 10_000
_RECONNECT_MAX_MS = 2_000
_CLOSE_FLUSH_S = 10.0


def _items(released: dict[TopicPartition, list[Fetched]]) -> list[Fetched]:
    return [item for fetched in released.values() for item in fetched]


def _contents(items: list[Fetched]) -> Decoded:
    """The events and the call edges the messages ``items`` hold, in their order."""
    return [e for item in items for e in item.events], [e for item in items for e in item.edges]


def _failure(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:500]}"


def _kind_of(exc: DecodeError) -> DeadLetterReason:
    if isinstance(exc, TooLarge):
        return DeadLetterReason.too_large
    if isinstance(exc, InvalidEvent):
        return DeadLetterReason.validation
    return DeadLetterReason.decode


class _Retry(Exception):
    """The batch in hand is to be retried (``cause``), after ``error``."""

    def __init__(self, cause: RetryCause, error: Exception) -> None:
        super().__init__(f"{cause.value}: {error}")
        self.cause = cause
        self.error = error


class _ClosedUnderItsReader(logging.Filter):
    """Work around kafka-python 3.0.12: closing a client (``close()`` on our thread) drops a
    connection's socket while its network thread may be about to read from it; that read
    then fails on the missing socket (``AttributeError``) and is logged as an error with a
    traceback, about the transport that was being closed on purpose (its name says
    "closed"). Nothing was lost and nobody can act on it: the record is dropped. Any other
    record of the transport's logger passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, AttributeError) and "(closed)" in record.getMessage())


logging.getLogger("kafka.net.transport").addFilter(_ClosedUnderItsReader())


def _restore_parked(consumer: KafkaConsumer) -> None:
    """Work around kafka-python 3.0.12: records fetched for a partition while it was paused
    are parked and handed back after ``resume()`` only when the fetcher's in-line slot is
    None, but a drained slot stays a (falsy) object, and a partition with parked records is
    never fetched again: a resumed partition stalled for good. Emptying a drained slot
    lets the next poll take the parked records."""
    fetcher = getattr(consumer, "_fetcher", None)
    slot = getattr(fetcher, "_next_partition_records", None)
    if slot is not None and not slot:
        fetcher._next_partition_records = None  # type: ignore[union-attr]


@dataclass(frozen=True, slots=True)
class _Limits:
    """How far a partition number's queues may be released: any front up to
    ``any_front``; one fetched at least ``max_idle_ms`` ago up to ``waited_front``."""

    any_front: datetime
    waited_front: datetime


_START_OF_TIME = datetime.min.replace(tzinfo=timezone.utc)
_END_OF_TIME = datetime.max.replace(tzinfo=timezone.utc)


def _log_failed_commit(offsets: dict[TopicPartition, OffsetAndMetadata], response: Any) -> None:
    if isinstance(response, Exception):
        # A rebalance, usually: the new owner redelivers, and the store dedups.
        log.warning("offset commit failed (%s); those batches will be redelivered", response)


class _DropRevoked(ConsumerRebalanceListener):
    """Messages fetched but not yet stored from a partition we lose are the new owner's:
    their offsets were never committed, so it reads them again."""

    def __init__(self, pending: dict[TopicPartition, Pending],
                 *stored: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self._pending = pending
        self._stored = stored

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Offsets stored but not yet committed are dropped too: the new owner reads those
        # messages again and the store skips them (it holds their events).
        for tp in revoked:
            self._pending.pop(tp, None)
            for offsets in self._stored:
                offsets.pop(tp, None)

    def on_partitions_assigned(self, assigned: Any) -> None:
        pass
