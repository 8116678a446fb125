"""A batch the store refuses for its values (``RefusedEvents``): the consumer stores the
rest, in event-time order, and dead-letters exactly the refused messages with the reason;
an outage while it does so leaves the whole batch to be retried. A batch failing
otherwise, again and again, because of one message (a poison pill): that message is
dead-lettered once it fails alone, twice, while the store takes writes (the rest of its
batch is stored, or the probe answers), whatever else the batch holds: two poisons of
different kinds, or nothing else at all. An outage, even one that ends in the middle of
that search, dead-letters nothing; the log says so once, and the process is not ready
while a batch keeps failing."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import triage.ingest.kafka as kafka_module
from tests.unit.test_consumer_bound import (
    ALERTS, LOGS, Message, NoProducer, ScriptedClient, assert_in_event_time, at_seconds,
)
from triage.domain.errors import RefusedEvents, StoreUnavailable
from triage.domain.event import Event
from triage.ingest.kafka import (
    DLQ_KIND, DLQ_OFFSET, DLQ_REASON, BatchConsumer, ConsumerConfig, DeadLetterReason, Decoded, RetryCause,
)

POISON = {"alerts-7", "logs-12"}


class DeadLetters(NoProducer):
    sent: list[tuple[str, Any, dict[str, bytes]]] = []

    def send(self, topic: str, key: Any, value: Any, headers: list[tuple[str, bytes]]) -> None:
        DeadLetters.sent.append((topic, value, dict(headers)))


class Store:
    """Refuses any batch holding a poisoned event, as PostgreSQL refuses a NUL character;
    ``fail_after`` refusals, it fails the way an unavailable database does."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.batches: list[list[Event]] = []
        self.refusals = 0
        self.fail_after = fail_after

    def __call__(self, events: list[Event], edges: list[Any]) -> None:
        if POISON & {e.id for e in events}:
            if self.fail_after is not None and self.refusals >= self.fail_after:
                self.fail_after = None
                raise ConnectionError("the database went away")
            self.refusals += 1
            raise RefusedEvents("text fields cannot contain NUL (0x00) bytes")
        self.batches.append(events)


def consumer_for(monkeypatch: pytest.MonkeyPatch, store: Any, *, probe: Any = None, observer: Any = None,
                 messages: dict[Any, list[bytes]] | None = None, decoder: Any = at_seconds,
                 **config: Any) -> BatchConsumer:
    messages = messages or {ALERTS: [str(2 * i + 1).encode() for i in range(10)],
                            LOGS: [str(2 * i).encode() for i in range(10)]}
    client = ScriptedClient(messages, list(messages))
    monkeypatch.setattr(kafka_module, "KafkaConsumer", lambda **_: client)
    monkeypatch.setattr(kafka_module, "KafkaProducer", DeadLetters)
    DeadLetters.sent = []
    return BatchConsumer(
        ConsumerConfig(bootstrap_servers="-", group_id="-", topics=sorted({tp.topic for tp in messages}),
                       dlq_topic="dlq", max_idle_ms=0, max_poll_records=20, retry_backoff_s=0,
                       lag_report_interval_s=0, **config),
        store, decoder=decoder, probe=probe, observer=observer)


def test_the_refused_messages_are_dead_lettered_and_the_rest_stored_in_event_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store()
    consumer = consumer_for(monkeypatch, store)
    for _ in range(30):
        consumer.poll_once()
    stored = [e.id for batch in store.batches for e in batch]
    everything = {f"alerts-{2 * i + 1}" for i in range(10)} | {f"logs-{2 * i}" for i in range(10)}
    assert sorted(stored) == sorted(everything - POISON)
    assert_in_event_time(store.batches)
    assert sorted((topic, value) for topic, value, _ in DeadLetters.sent) == [("dlq", b"12"), ("dlq", b"7")]
    for _, _, headers in DeadLetters.sent:
        assert headers[DLQ_REASON] == b"the store refused it: text fields cannot contain NUL (0x00) bytes"
        assert headers[DLQ_KIND] == b"store_refused"
    assert {int(h[DLQ_OFFSET]) for _, _, h in DeadLetters.sent} == {3, 6}   # "7" and "12" in their partitions
    assert consumer.totals.dead_lettered == 2 and consumer.totals.handler_failures == 0
    assert consumer._stored[ALERTS].offset == 10 and consumer._stored[LOGS].offset == 10   # all of it: committed


def test_another_failure_while_isolating_retries_the_whole_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(fail_after=1)
    consumer = consumer_for(monkeypatch, store)
    while not store.refusals:
        consumer.poll_once()
    assert consumer.totals.handler_failures == 1 and not DeadLetters.sent and not consumer._stored
    for _ in range(30):
        consumer.poll_once()
    assert len({e.id for batch in store.batches for e in batch}) == 18   # what was stored before is kept once
    assert consumer.totals.dead_lettered == 2


class PoisonedHandler:
    """Raises on any batch holding a poisoned event (a bug that one event triggers)."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    def __call__(self, events: list[Event], edges: list[Any]) -> None:
        if POISON & {e.id for e in events}:
            raise ValueError("incident would hold no events")
        self.batches.append(events)


class Outage:
    """The first ``calls`` calls fail as an unreachable database does; then it stores."""

    def __init__(self, calls: int) -> None:
        self.left = calls
        self.batches: list[list[Event]] = []

    def __call__(self, events: list[Event], edges: list[Any]) -> None:
        if self.left > 0:
            self.left -= 1
            raise ConnectionError("connection refused")
        self.batches.append(events)


def drain(consumer: BatchConsumer, polls: int = 300) -> None:
    for _ in range(polls):
        consumer.poll_once()


def test_a_message_failing_on_its_own_is_dead_lettered_after_repeated_failures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    handler = PoisonedHandler()
    consumer = consumer_for(monkeypatch, handler)   # type: ignore[arg-type]
    drain(consumer)
    stored = {e.id for batch in handler.batches for e in batch}
    assert len(stored) == 18 and not stored & POISON
    assert sorted(value for _, value, _ in DeadLetters.sent) == [b"12", b"7"]
    for _, _, headers in DeadLetters.sent:
        assert headers[DLQ_REASON] == b"storing it failed on its own: ValueError: incident would hold no events"
        assert headers[DLQ_KIND] == b"failed_alone"
    assert consumer.totals.handler_failures == consumer.config.isolate_after_failures - 1   # then isolated
    assert consumer._stored[ALERTS].offset == 10 and consumer._stored[LOGS].offset == 10


@pytest.mark.parametrize("calls", [*range(1, 16), 30, 60, 200])
def test_an_outage_dead_letters_nothing_even_if_it_ends_during_the_search(
        monkeypatch: pytest.MonkeyPatch, calls: int) -> None:
    handler = Outage(calls)
    consumer = consumer_for(monkeypatch, handler)   # type: ignore[arg-type]
    drain(consumer)
    assert not DeadLetters.sent and consumer.totals.dead_lettered == 0
    assert len({e.id for batch in handler.batches for e in batch}) == 20


class Observer:
    """What ``triage.services.telemetry.Metrics`` is told."""

    def __init__(self) -> None:
        self.dead: list[tuple[str, DeadLetterReason]] = []
        self.retries: list[RetryCause] = []
        self.stalls: list[str] = []
        self.flowing_calls = 0
        self.lags: list[int] = []

    def batch_decoded(self, topic: str, ok: int) -> None:
        pass

    def message_dead_lettered(self, topic: str, reason: DeadLetterReason) -> None:
        self.dead.append((topic, reason))

    def batch_retried(self, cause: RetryCause) -> None:
        self.retries.append(cause)

    def stalled(self, reason: str) -> None:
        self.stalls.append(reason)

    def flowing(self) -> None:
        self.flowing_calls += 1

    def lag(self, messages: int) -> None:
        self.lags.append(messages)


class TwoPoisons:
    """Defect 2's pair: one event the database refuses (a NUL character in its id, refused
    by the batch's first read, before anything is correlated), one that fails inside the
    batch otherwise (a year-9999 date overflowing ``opened_at + max_incident_age``), in
    one batch. Counts its calls."""

    def __init__(self, refused: str = "alerts-7", overflow: str = "logs-12") -> None:
        self.refused, self.overflow = refused, overflow
        self.batches: list[list[Event]] = []
        self.calls = 0

    def __call__(self, events: list[Event], edges: list[Any]) -> None:
        self.calls += 1
        ids = {e.id for e in events}
        if self.refused in ids:
            raise RefusedEvents("invalid byte sequence for encoding \"UTF8\": 0x00")
        if self.overflow in ids:
            raise OverflowError("date value out of range")
        self.batches.append(events)


def test_two_poisons_of_different_kinds_in_one_batch_are_both_dead_lettered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: the batch was refused (the NUL), searched "refused only", and the half
    # holding the overflow re-raised: the batch was retried from the top for ever.
    handler = TwoPoisons()
    observer = Observer()
    consumer = consumer_for(monkeypatch, handler, observer=observer, probe=lambda: None)
    drain(consumer, 50)
    stored = {e.id for batch in handler.batches for e in batch}
    assert len(stored) == 18 and not stored & POISON
    reasons = {value: (h[DLQ_KIND], h[DLQ_REASON]) for _, value, h in DeadLetters.sent}
    assert reasons == {
        b"7": (b"store_refused", b'the store refused it: invalid byte sequence for encoding "UTF8": 0x00'),
        b"12": (b"failed_alone", b"storing it failed on its own: OverflowError: date value out of range")}
    assert sorted(observer.dead) == [("alerts", DeadLetterReason.store_refused),
                                     ("logs", DeadLetterReason.failed_alone)]
    assert consumer._stored[ALERTS].offset == 10 and consumer._stored[LOGS].offset == 10
    # Bounded: the first try, then a search of at most two calls per poison and halving step.
    assert handler.calls <= 1 + 2 * 2 * 5 + 2 + 10


def test_two_poisons_failing_the_same_way_with_nothing_else_in_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing of the batch can be stored, yet the store takes writes (the probe answers).
    handler = TwoPoisons(refused="none", overflow="alerts-1")
    both = lambda events, edges: (_ for _ in ()).throw(OverflowError("date value out of range"))  # noqa: E731
    consumer = consumer_for(monkeypatch, both, probe=lambda: None,
                            messages={ALERTS: [b"1", b"3"]})
    drain(consumer, 20)
    assert sorted(value for _, value, _ in DeadLetters.sent) == [b"1", b"3"]
    assert consumer._stored[ALERTS].offset == 2
    assert handler.calls == 0


def test_a_lone_poison_is_dead_lettered_in_bounded_time_not_taken_for_an_outage(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: a batch of one failing message could not tell itself from an outage (no part
    # of it was stored) and was retried every second until something landed behind it.
    calls = []

    def lone(events: list[Event], edges: list[Any]) -> None:
        calls.append([e.id for e in events])
        raise OverflowError("date value out of range")

    probes = []
    observer = Observer()
    consumer = consumer_for(monkeypatch, lone, probe=lambda: probes.append(1), observer=observer,
                            messages={ALERTS: [b"5"]})
    drain(consumer, 10)
    assert [(value, h[DLQ_KIND]) for _, value, h in DeadLetters.sent] == [(b"5", b"failed_alone")]
    assert consumer._stored[ALERTS].offset == 1
    assert len(calls) == consumer.config.isolate_after_failures + 1   # three tries, one more alone
    assert observer.retries == [RetryCause.failed] * (consumer.config.isolate_after_failures - 1)
    assert probes   # it was the probe that said the store takes writes


@pytest.mark.parametrize("error", [StoreUnavailable("connection refused"), ConnectionError("reset")])
def test_a_lone_message_failing_while_the_store_is_down_is_retried_not_dead_lettered(
        monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def down(events: list[Event], edges: list[Any]) -> None:
        raise error

    observer = Observer()
    consumer = consumer_for(monkeypatch, down, probe=lambda: None, observer=observer, messages={ALERTS: [b"5"]})
    drain(consumer, 30)
    assert not DeadLetters.sent and not consumer._stored
    assert observer.retries == [RetryCause.unavailable] * 30


class ProbedOutage:
    """An outage that the store reports as nothing in particular (a RuntimeError, as a
    driver might for a connection cut mid-statement): the first ``calls`` store calls fail,
    and the probe fails for as long as the outage lasts. One poisoned message
    ("alerts-7") fails the store whenever it is in a batch."""

    def __init__(self, calls: int, poison: bool) -> None:
        self.left = calls
        self.poison = poison
        self.batches: list[list[Event]] = []

    def probe(self) -> None:
        if self.left > 0:
            raise RuntimeError("server closed the connection unexpectedly")

    def __call__(self, events: list[Event], edges: list[Any]) -> None:
        if self.left > 0:
            self.left -= 1
            raise RuntimeError("server closed the connection unexpectedly")
        if self.poison and "alerts-7" in {e.id for e in events}:
            raise ValueError("incident would hold no events")
        self.batches.append(events)


@pytest.mark.parametrize("poison", [False, True])
@pytest.mark.parametrize("calls", [*range(1, 16), 30, 60])
def test_an_outage_the_probe_sees_dead_letters_nothing_whenever_it_ends(
        monkeypatch: pytest.MonkeyPatch, calls: int, poison: bool) -> None:
    handler = ProbedOutage(calls, poison)
    consumer = consumer_for(monkeypatch, handler, probe=handler.probe)
    drain(consumer)
    assert [value for _, value, _ in DeadLetters.sent] == ([b"7"] if poison else [])
    assert len({e.id for batch in handler.batches for e in batch}) == 20 - poison


class RefusesThenGoesDown:
    """Refuses the batches holding the poison, and goes down for ``calls`` calls after
    its first refusal: in the middle of the search."""

    def __init__(self, calls: int) -> None:
        self.left = calls
        self.refused = False
        self.batches: list[list[Event]] = []

    def __call__(self, events: list[Event], edges: list[Any]) -> None:
        if self.refused and self.left > 0:
            self.left -= 1
            raise StoreUnavailable("the database system is shutting down")
        if POISON & {e.id for e in events}:
            self.refused = True
            raise RefusedEvents("text fields cannot contain NUL (0x00) bytes")
        self.batches.append(events)


@pytest.mark.parametrize("calls", [1, 2, 5, 12])
def test_an_outage_during_a_refused_batchs_search_leaves_it_to_be_retried(
        monkeypatch: pytest.MonkeyPatch, calls: int) -> None:
    handler = RefusesThenGoesDown(calls)
    consumer = consumer_for(monkeypatch, handler)
    while handler.left:
        consumer.poll_once()
    assert not DeadLetters.sent   # the search was cut short: nothing dead-lettered on the way
    drain(consumer, 50)
    assert sorted(value for _, value, _ in DeadLetters.sent) == [b"12", b"7"]
    assert len({e.id for batch in handler.batches for e in batch}) == 18


def test_a_stall_is_logged_once_reported_unready_and_its_lag_measured_at_the_broker(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    handler = Outage(40)
    observer = Observer()
    consumer = consumer_for(monkeypatch, handler, observer=observer, unready_after_failures=3)
    caplog.set_level(logging.INFO, logger="triage.ingest.kafka")
    for _ in range(20):
        consumer.poll_once()
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is None   # once, and no traceback for an outage
    assert len(observer.stalls) == consumer.totals.handler_failures - 2 > 10 and observer.flowing_calls == 0
    # Nothing is stored while stalled, and the lag says so: every message (it was only
    # reported after a stored batch, so a stalled consumer's gauge stayed where it was).
    assert observer.lags[-1] == 20
    drain(consumer, 100)
    assert observer.flowing_calls == 1 and observer.lags[-1] == 0
    assert any("stored the batch after 40 failed attempts" in r.getMessage() for r in caplog.records)


def test_a_failure_that_is_not_an_outage_logs_its_traceback_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def lone(events: list[Event], edges: list[Any]) -> None:
        raise OverflowError("date value out of range")

    consumer = consumer_for(monkeypatch, lone, probe=lambda: None, messages={ALERTS: [b"5"]},
                            isolate_after_failures=10)
    caplog.set_level(logging.INFO, logger="triage.ingest.kafka")
    drain(consumer, 30)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 2   # when the batch first failed, and when the message failed alone twice
    assert len(DeadLetters.sent) == 1


def test_a_decoder_crash_dead_letters_the_message_and_the_partition_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    def fragile(topic: str, value: bytes | None) -> Decoded:
        if value == b"7":
            raise OverflowError("date value out of range")   # not a DecodeError: a decoder's bug
        return at_seconds(topic, value)

    stored: list[Event] = []
    observer = Observer()
    consumer = consumer_for(monkeypatch, lambda events, edges: stored.extend(events), decoder=fragile,
                            observer=observer)
    drain(consumer, 30)
    assert len(stored) == 19
    assert [(value, h[DLQ_KIND], h[DLQ_REASON]) for _, value, h in DeadLetters.sent] == [
        (b"7", b"decode", b"the decoder failed: OverflowError: date value out of range")]
    assert observer.dead == [("alerts", DeadLetterReason.decode)]


def test_lag_counts_from_the_first_message_not_stored() -> None:
    consumer = BatchConsumer.__new__(BatchConsumer)
    consumer.config = ConsumerConfig(bootstrap_servers="-", group_id="-", topics=[], dlq_topic="-")
    client = ScriptedClient({ALERTS: [b"1"] * 7, LOGS: [b"1"] * 4}, [ALERTS, LOGS])
    client.next = {ALERTS: 7, LOGS: 4}
    consumer._consumer = client
    consumer._stored = {}
    from triage.ingest.pending import Fetched, Pending
    consumer._pending = {ALERTS: Pending()}
    consumer._pending[ALERTS].append(Fetched(5, [], [], None, Message("alerts", 0, 5, None, b"1", [])))
    assert consumer.lag() == (7 - 5) + (4 - 4)
    # The broker's end offsets count when the client has no high watermark (nothing fetched).
    client.highwater = lambda tp: None   # type: ignore[method-assign]
    assert consumer.lag() == (7 - 5) + (4 - 4)
    client.end_offsets = lambda tps, timeout_ms=None: {}   # type: ignore[method-assign]
    assert consumer.lag() == 0
