"""The consumer's per-partition queue of fetched messages (ingest/kafka.py ``_Pending``)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from triage.ingest.kafka import _Fetched, _Pending

T0 = datetime(2026, 3, 11, 14, 0, tzinfo=timezone.utc)


def fetched(offset: int, seconds: float | None) -> _Fetched:
    return _Fetched(offset, [], [], None if seconds is None else T0 + timedelta(seconds=seconds))


def test_latest_is_the_latest_time_still_queued_whatever_the_order() -> None:
    rng = random.Random(3)
    queue, mirror = _Pending(), []
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
    queue = _Pending()
    for offset, seconds in enumerate([5, 9, None, 2, 7]):
        queue.append(fetched(offset, seconds))
    taken = [queue.popleft(), queue.popleft()]
    assert queue.latest() == T0 + timedelta(seconds=7)
    queue.put_back(taken)
    assert [queue[i].offset for i in range(len(queue))] == [0, 1, 2, 3, 4]
    assert queue.latest() == T0 + timedelta(seconds=9)
