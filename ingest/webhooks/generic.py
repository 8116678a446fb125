"""triage's own JSON: one event, or a list, in ``Event``'s field names."""

from __future__ import annotations

from datetime import datetime
from typing import Any


from triage.ingest.decode import event_from_dict
from triage.domain.errors import InvalidEvent
from triage.domain.event import (
    DEFAULT_LIMITS,
    Event,
    Limits,
)

from triage.ingest.webhooks._common import (
    _require_aware,
)


def from_generic(payload: dict[str, Any] | list[Any], *, received_at: datetime,
                 limits: Limits = DEFAULT_LIMITS) -> list[Event]:
    """Events already in triage's own field names: one JSON object or a list of them.

    Validation is ``event_from_dict``'s (the same as the Kafka topic's); an object
    without ``id`` gets one from its content, so a retried POST stores once. In a
    list, the error's field is prefixed with the item's index, e.g. ``[2].severity``.
    """
    _require_aware(received_at)
    if isinstance(payload, dict):
        return [event_from_dict(payload, limits=limits)]
    if not isinstance(payload, list):
        raise InvalidEvent(f"expected a JSON object or a list of objects, got {type(payload).__name__}")
    events = []
    for i, item in enumerate(payload):
        try:
            events.append(event_from_dict(item, limits=limits))
        except InvalidEvent as exc:
            where = f"[{i}].{exc.field}" if exc.field else f"[{i}]"
            raise InvalidEvent(f"{where}: {exc.reason}", where) from None
    return events
