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
released messages go back to the front of their queues and are tried again after a pause.
A batch the store refuses for its values, or one failing again and again, is stored in
parts instead, and the messages that fail on their own are dead-lettered
(``BatchConsumer._store_in_parts``): one bad message must not stall its partition.
"""

from __future__ import annotations

import heapq
import math
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.structs import OffsetAndMetadata, TopicPartition
from opentelemetry import trace

from triage.ingest.decode import decode_event
from triage.ingest.otlp import ServiceEdge, TopicKind, decode_kafka_value
from triage.ingest.errors import DecodeError, RefusedEvents
from triage.ingest.event import DEFAULT_LIMITS, Event, Limits, with_domain

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# Header names on dead-lettered messages.
DLQ_REASON = "triage.error.reason"
DLQ_TOPIC = "triage.source.topic"
DLQ_PARTITION = "triage.source.partition"
DLQ_OFFSET = "triage.source.offset"

Decoded = tuple[list[Event], list[ServiceEdge]]
Decoder = Callable[[str, bytes | None], Decoded]
# Stores a batch durably (events, and the caller -> callee edges traces revealed).
Handler = Callable[[list[Event], list[ServiceEdge]], Any]


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
    # A batch failing this many times in a row is stored in parts, to find a message that
    # fails on its own (a poison pill) while the rest of its batch can be stored.
    isolate_after_failures: int = 3
    max_idle_ms: int = 5
    max_lag_wait_ms: int = 5_000
    fetch_max_wait_ms: int = 10
    max_pending: int = 50_000  # fetched, not yet due: past it the partitions holding them are paused
    commit_interval_ms: int = 1_000   # stored offsets are committed this often (and at close)
    lag_report_interval_s: float = 1.0
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


@dataclass
class _Fetched:
    """One message, decoded, waiting for its turn."""

    offset: int
    events: list[Event]
    edges: list[ServiceEdge]
    time: datetime | None  # latest event time in it; None when it was dead-lettered
    message: Any = None    # the record as fetched: dead-lettered whole if the store refuses it


class _Pending:
    """One partition's fetched messages, oldest offset first, that also knows the latest
    event time among them in O(1): the release step asks for it on every poll, and
    with tens of thousands of messages waiting a scan per poll was most of the
    consumer's time. (A monotonic deque: the classic sliding-window maximum.)"""

    def __init__(self) -> None:
        self._items: deque[_Fetched] = deque()
        self._latest: deque[_Fetched] = deque()   # times strictly decreasing

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __getitem__(self, index: int) -> _Fetched:
        return self._items[index]

    def append(self, item: _Fetched) -> None:
        self._items.append(item)
        if item.time is not None:
            while self._latest and self._latest[-1].time <= item.time:  # type: ignore[operator]
                self._latest.pop()
            self._latest.append(item)

    def popleft(self) -> _Fetched:
        item = self._items.popleft()
        if self._latest and self._latest[0] is item:
            self._latest.popleft()
        return item

    def put_back(self, items: list[_Fetched]) -> None:
        """Return released items to the front (their batch failed), in their order."""
        rest = list(self._items)
        self._items.clear()
        self._latest.clear()
        for item in [*items, *rest]:
            self.append(item)

    def latest(self) -> datetime | None:
        return self._latest[0].time if self._latest else None


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
                 observer: ConsumerObserver | None = None) -> None:
        self.config = config
        self.handler = handler
        self.decoder = decoder
        self.observer = observer
        self.totals = ConsumerTotals()
        self._pending: dict[TopicPartition, _Pending] = defaultdict(_Pending)
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
        )
        self._consumer.subscribe(config.topics,
                                 listener=_DropRevoked(self._pending, self._stored, self._uncommitted))
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
        """One poll -> release what is due -> one handler call -> one commit.
        Returns the number of events handled."""
        # Three calls and no locals, on purpose: a kafka-python poll that waits out its
        # timeout leaves its frames, and through them every caller's frame, in a reference
        # cycle. A batch held in this frame would then live until the next cyclic
        # collection instead of being freed when it is stored, and the collections came
        # more often and took longer (docs/benchmarks.md, "Fifth session").
        self._fetch(self._poll_timeout_ms())
        return self._handle(self._release())

    def _poll_timeout_ms(self) -> int:
        # Block for new data only when nothing fetched is waiting to be released; when
        # something waits on a peer, poll until the first peer's patience runs out.
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
            records = self._consumer.poll(timeout_ms=timeout_ms, max_records=self.config.max_poll_records)
            self._note_assignment()
            if not records:
                return
            with tracer.start_as_current_span("ingest.decode"):
                self._decode_and_dead_letter(records)
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

    def _handle(self, released: dict[TopicPartition, list[_Fetched]]) -> int:
        self._released_last = bool(released)
        if not released:
            self._commit_due()
            self._report_lag()
            return 0
        items = [item for fetched in released.values() for item in fetched]
        events = sum(len(item.events) for item in items)
        try:
            try:
                self._store_items(items)
            except RefusedEvents:
                self._store_in_parts(released, refused_only=True)
            except Exception:  # noqa: BLE001
                if self._failed_in_a_row + 1 < self.config.isolate_after_failures:
                    raise
                self._store_in_parts(released, refused_only=False)
        except Exception:  # noqa: BLE001 - any storage failure means: do not commit, retry
            self._failed_in_a_row += 1
            self.totals.handler_failures += 1
            log.exception("storing a batch of %d events failed; it will be retried", events)
            for tp, items in released.items():
                self._pending[tp].put_back(items)
            time.sleep(self.config.retry_backoff_s)
            return 0
        self._failed_in_a_row = 0
        self._commit(released)
        self.totals.batches += 1
        self.totals.events += events
        self._report_lag()
        return events

    def _store_in_parts(self, released: dict[TopicPartition, list[_Fetched]], *, refused_only: bool) -> None:
        """Store a failing batch in halves, oldest first (so in event time), until each
        message that fails stands alone, and dead-letter those with the reason.

        ``refused_only``: the store refused the batch's values (``RefusedEvents``): only
        messages it refuses are dead-lettered; any other failure raises, and the whole
        batch is retried. Otherwise the batch has failed ``isolate_after_failures`` times
        in a row: a message that fails alone is tried once more after the rest, and
        dead-lettered only if it fails again, the same way, while the store took other
        parts of the batch. When no part could be stored, the store is down, not the
        message: raise.
        What was stored before a raise is skipped by id when the batch is retried."""
        items = sorted((item for fetched in released.values() for item in fetched),
                       key=lambda item: item.time or _START_OF_TIME)
        dead: list[tuple[_Fetched, str]] = []
        suspects: list[tuple[_Fetched, str]] = []   # (item, how it failed alone)
        stored_any = False

        def store(part: list[_Fetched]) -> None:
            nonlocal stored_any
            try:
                self._store_items(part)
                stored_any = True
            except RefusedEvents as exc:
                if len(part) > 1:
                    halves(part)
                else:
                    dead.append((part[0], f"the store refused it: {exc.reason}"))
            except Exception as exc:   # noqa: BLE001
                if refused_only:
                    raise
                if len(part) > 1:
                    halves(part)
                else:
                    suspects.append((part[0], _failure(exc)))

        def halves(part: list[_Fetched]) -> None:
            store(part[:len(part) // 2])
            store(part[len(part) // 2:])

        store(items)
        if suspects and not stored_any:
            raise RuntimeError("no part of the batch could be stored")
        for item, first in suspects:
            try:
                self._store_items([item])   # a store that has just come back takes it now
            except RefusedEvents as exc:
                dead.append((item, f"the store refused it: {exc.reason}"))
            except Exception as exc:   # noqa: BLE001
                if _failure(exc) != first:
                    raise   # failing differently each time: the store, not this message
                log.exception("a message failed alone, twice, while the rest of its batch was stored")
                dead.append((item, f"storing it failed on its own: {first}"))
        for item, reason in dead:
            self._dead_letter(item.message, reason)
        self._producer.flush()   # durable before the offsets are committed
        self.totals.dead_lettered += len(dead)

    def _store_items(self, items: list[_Fetched]) -> None:
        events = [e for item in items for e in item.events]
        edges = [e for item in items for e in item.edges]
        if events or edges:
            self.handler(events, edges)

    def _decode_and_dead_letter(self, records: dict[TopicPartition, list[Any]]) -> None:
        dead_total = 0
        for tp, messages in records.items():
            ok = dead = 0
            queue = self._pending[tp]
            for msg in messages:
                try:
                    events, edges = self.decoder(tp.topic, msg.value)
                except DecodeError as exc:
                    self._dead_letter(msg, exc.reason)
                    queue.append(_Fetched(msg.offset, [], [], None))
                    dead += 1
                    continue
                latest = max([e.occurred_at for e in events] + [e.observed_at for e in edges], default=None)
                queue.append(_Fetched(msg.offset, events, edges, latest, msg))
                ok += len(events)
            dead_total += dead
            if self.observer:
                self.observer.batch_decoded(tp.topic, ok, dead)
        if dead_total:
            self._producer.flush()  # dead letters are durable before their offsets can be committed
            self.totals.dead_lettered += dead_total

    def _release(self) -> dict[TopicPartition, list[_Fetched]]:
        """Take from the pending queues what no other topic can still precede, oldest
        first, at most ``max_poll_records`` messages: one store transaction.

        A partition's queue is taken from its front while the front is not later than
        the watermark of its partition number (the least of how far each topic's
        partition is read); across queues the earliest front goes first (a k-way merge),
        so the work is proportional to what is released, not to what waits."""
        by_number: dict[int, list[TopicPartition]] = defaultdict(list)
        for tp in self._consumer.assignment():
            by_number[tp.partition].append(tp)
        now = time.monotonic()
        limits: dict[TopicPartition, datetime] = {}
        for tps in by_number.values():
            if not any(self._pending.get(tp) for tp in tps):
                for tp in tps:  # nothing is held back, so nobody is waiting
                    self._waiting_since.pop(tp, None)
                continue
            watermark = min(self._read_up_to(tp, now) for tp in tps)
            for tp in tps:
                if self._pending.get(tp):
                    limits[tp] = watermark
        heads: list[tuple[datetime, TopicPartition]] = []   # ties: by topic, then partition

        def push(tp: TopicPartition) -> None:
            queue = self._pending[tp]
            if queue:
                head = queue[0].time or _START_OF_TIME
                if head <= limits[tp]:
                    heapq.heappush(heads, (head, tp))

        for tp in limits:
            push(tp)
        released: dict[TopicPartition, list[_Fetched]] = {}
        budget = self.config.max_poll_records
        while heads and budget > 0:
            _, tp = heapq.heappop(heads)
            released.setdefault(tp, []).append(self._pending[tp].popleft())
            budget -= 1
            push(tp)
        return released

    def _patience_left_ms(self) -> int:
        """Until the first empty partition that holds its peers back stops doing so (if
        it is caught up), at most 5 ms: a fixed poll interval made a held message wait
        up to one interval past its peer's patience. A deadline already past belongs to a
        lagging partition (a caught-up one would have been let go): 5 ms, not a spin."""
        now = time.monotonic()
        ahead = [left for since in self._waiting_since.values()
                 if (left := since + self.config.max_idle_ms / 1000 - now) > 0]
        return min(5, math.ceil(min(ahead, default=0.005) * 1000))

    def _read_up_to(self, tp: TopicPartition, now: float) -> datetime:
        """How far in event time this partition is known to be read.

        An empty queue whose partition the broker still holds records for (lagging) holds
        its peers back until they arrive, for at most ``max_lag_wait_ms``; one that is
        caught up holds them ``max_idle_ms`` at most, which may be 0 (Kafka Streams'
        max.task.idle.ms, with KIP-695's distinction): a little patience there keeps the
        order when a producer writes one topic a moment after another, at that much latency.
        """
        latest = self._pending[tp].latest()
        if latest is not None:
            self._waiting_since.pop(tp, None)
            return latest
        since = self._waiting_since.setdefault(tp, now)
        high = self._consumer.highwater(tp)
        position = self._position(tp)
        lagging = high is None or position is None or position < high
        patience = self.config.max_lag_wait_ms if lagging else self.config.max_idle_ms
        if (now - since) * 1000 >= patience:
            return _END_OF_TIME
        return _START_OF_TIME

    def _commit(self, released: dict[TopicPartition, list[_Fetched]]) -> None:
        offsets = {}
        for tp, items in released.items():
            queue = self._pending.get(tp)
            next_offset = queue[0].offset if queue else items[-1].offset + 1
            offsets[tp] = OffsetAndMetadata(next_offset, "", -1)
        self._stored.update(offsets)
        self._uncommitted.update(offsets)
        self._commit_due()

    def _commit_due(self) -> None:
        """Commit what was stored since the last commit, if ``commit_interval_ms`` has
        passed. Each commit is a request the broker answers and the client's network
        thread handles: one after every batch was about a hundred a second at 1,000
        events/s, on the cores the broker shares (docs/benchmarks.md, "Ninth session").
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
        """Messages not yet stored on the partitions this member holds."""
        total = 0
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                continue
            position = self._position(tp)
            if position is not None:
                total += max(0, high - position) + len(self._pending.get(tp, ()))
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
            self.observer.lag(self.lag())

    def close(self) -> None:
        try:
            self._producer.flush()
            self._producer.close()
        finally:
            try:
                if self._stored:
                    self._consumer.commit(offsets=dict(self._stored))
            except KafkaError as exc:
                log.warning("final offset commit failed (%s); the last batches will be redelivered", exc)
            finally:
                self._consumer.close(autocommit=False)


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


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


_START_OF_TIME = datetime.min.replace(tzinfo=timezone.utc)
_END_OF_TIME = datetime.max.replace(tzinfo=timezone.utc)


def _log_failed_commit(offsets: dict[TopicPartition, OffsetAndMetadata], response: Any) -> None:
    if isinstance(response, Exception):
        # A rebalance, usually: the new owner redelivers, and the store dedups.
        log.warning("offset commit failed (%s); those batches will be redelivered", response)


class _DropRevoked(ConsumerRebalanceListener):
    """Messages fetched but not yet stored from a partition we lose are the new owner's:
    their offsets were never committed, so it reads them again."""

    def __init__(self, pending: dict[TopicPartition, _Pending],
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
