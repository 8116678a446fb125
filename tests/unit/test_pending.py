"""The consumer's per-partition queue of fetched messages (``triage.ingest.pending.Pending``)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from triage.ingest.pending import Fetched, Pending

T0 = datetime(2026, 3, 11, 14, 0, tzinfo=timezone.utc)


def fetched(offset: int, seconds: float | None) -> Fetched:
    return Fetched(offset, [], [], None if seconds is None else T0 + timedelta(seconds=seconds))


def test_latest_is_the_latest_time_still_queued_whatever_the_order() -> None:
    rng = random.Random(3)
    queue, mirror = Pending(), []
    for offset in range(500):
        item = fetched(offset, None if rng.random() < 0.1 else rng.randrange(100))
        queue.append(item)
        mirror.append(item)
        if rng.random() < 0.4:
            assert queue.popleft() is mirror.pop(0)
        times = [m.time for m in mirror if m.time is not None]
        assert queue.latest() == (max(times) if times else None)
        assert len(queue) == len(mirror)


def test_put_back_restores_order_and_latest() -> None:
    queue = Pending()
    for offset, seconds in enumerate([5, 9, None, 2, 7]):
        queue.append(fetched(offset, seconds))
    taken = [queue.popleft(), queue.popleft()]
    assert queue.latest() == T0 + timedelta(seconds=7)
    queue.put_back(taken)
    assert [queue[i].offset for i in range(len(queue))] == [0, 1, 2, 3, 4]
    assert queue.latest() == T0 + timedelta(seconds=9)


class _Gauge:
    def __init__(self) -> None:
        self.values: list[int] = []

    def batch_decoded(self, topic: str, ok: int) -> None:
        pass

    def lag(self, messages: int) -> None:
        self.values.append(messages)


def test_lag_is_reported_at_most_once_per_interval(monkeypatch) -> None:
    # lag() asks the client for each partition's position; after every batch it was most
    # of the consumer loop's time. The gauge is refreshed once per interval instead.
    from triage.ingest.kafka import BatchConsumer, ConsumerConfig

    clock = [1000.0]
    monkeypatch.setattr("triage.ingest.kafka.time.monotonic", lambda: clock[0])
    consumer = BatchConsumer.__new__(BatchConsumer)   # no broker: only the throttle is under test
    consumer.config = ConsumerConfig(bootstrap_servers="-", group_id="-", topics=[], dlq_topic="-",
                                     lag_report_interval_s=1.0)
    consumer.observer = gauge = _Gauge()
    consumer._lag_reported_at = float("-inf")
    lags = iter(range(100))
    monkeypatch.setattr(consumer, "lag", lambda: next(lags))
    for step in (0.0, 0.3, 0.6, 1.0, 1.2, 2.5):
        clock[0] = 1000.0 + step
        consumer._report_lag()
    assert gauge.values == [0, 1, 2]   # at 0.0, 1.0 and 2.5 s
