"""The errors ingest raises, in one place.

    IngestError
    ├── DecodeError          the bytes are not an event we accept; ``reason`` says why
    │   ├── NotJSON          not UTF-8 JSON at all
    │   ├── TooLarge         more bytes than ``Limits.max_message_bytes``
    │   └── InvalidEvent     JSON, but a field is missing, wrong or past a limit
    │                        (``field`` names it)
    ├── RefusedEvents        valid events the store cannot hold (a value its database
    │                        refuses), raised by a handler; retrying would fail forever
    └── StoreUnavailable     the store cannot take anything now (connection lost, disk
                             full, read-only, a lock timed out): no message is to blame

Callers translate at their boundary: the Kafka consumer dead-letters the message
with the reason in a header, the API answers 422 with the same reason.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of everything ingest raises on purpose."""


class DecodeError(IngestError):
    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class NotJSON(DecodeError):
    pass


class InvalidEvent(DecodeError):
    pass


class TooLarge(DecodeError):
    pass


class RefusedEvents(IngestError):
    """The store refused the values of some event in the batch (PostgreSQL's data
    exceptions: a NUL character, a number out of range), as opposed to being unavailable.
    The consumer then stores the batch in halves until each refused message stands alone,
    and dead-letters those."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreUnavailable(IngestError):
    """The store failed in a way no message can cause (the database unreachable, out of
    disk, read-only, a lock or statement timeout): the consumer retries the batch and
    dead-letters nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
