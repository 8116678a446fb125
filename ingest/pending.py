"""What the consumer holds between fetching a message and storing it: per partition, the
decoded messages in offset order, with the latest event time among them at hand (the
event-time release step of ``BatchConsumer`` asks for it on every poll)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from triage.domain.event import Event, ServiceEdge


@dataclass
class Fetched:
    """One message, decoded, waiting for its turn."""

    offset: int
    events: list[Event]
    edges: list[ServiceEdge]
    time: datetime | None  # latest event time in it; None when it was dead-lettered
    message: Any = None    # the record as fetched: dead-lettered whole if the store refuses it
    fetched_at: float = 0.0   # monotonic seconds when it was decoded: how long it has waited


class Pending:
    """One partition's fetched messages, oldest offset first, that also knows the latest
    event time among them in O(1): the release step asks for it on every poll, and
    with tens of thousands of messages waiting a scan per poll was most of the
    consumer's time. (A monotonic deque: the classic sliding-window maximum.)"""

    def __init__(self) -> None:
        self._items: deque[Fetched] = deque()
        self._latest: deque[Fetched] = deque()   # times strictly decreasing

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __getitem__(self, index: int) -> Fetched:
        return self._items[index]

    def append(self, item: Fetched) -> None:
        self._items.append(item)
        if item.time is not None:
            while self._latest and self._latest[-1].time <= item.time:  # type: ignore[operator]
                self._latest.pop()
            self._latest.append(item)

    def popleft(self) -> Fetched:
        item = self._items.popleft()
        if self._latest and self._latest[0] is item:
            self._latest.popleft()
        return item

    def put_back(self, items: list[Fetched]) -> None:
        """Return released items to the front (their batch failed), in their order."""
        rest = list(self._items)
        self._items.clear()
        self._latest.clear()
        for item in [*items, *rest]:
            self.append(item)

    def latest(self) -> datetime | None:
        return self._latest[0].time if self._latest else None
