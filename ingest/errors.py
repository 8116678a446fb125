"""The errors ingest raises, in one place.

    IngestError
    └── DecodeError          the bytes are not an event we accept; ``reason`` says why
        ├── NotJSON          not UTF-8 JSON at all
        └── InvalidEvent     JSON, but a field is missing or wrong (``field`` names it)

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
