"""What every webhook translator shares: the labels it marks events with and the small
field readers that raise ``InvalidEvent`` naming the field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from triage.ingest.decode import describe_validation_error
from triage.domain.errors import InvalidEvent
from triage.domain.event import (
    Event,
    LabelValue,
    Limits,
    Severity,
    normalize_severity,
)

SEVERITY_DEFAULTED = "triage.severity_defaulted"
TIME_DEFAULTED = "triage.time_defaulted"

# Titles are what a person scans in a list; the full text stays in the body.
_TITLE_MAX = 500



# --------------------------------------------------------------------------- helpers


def _require_aware(received_at: datetime) -> datetime:
    if received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    return received_at.astimezone(timezone.utc)


def _digest(*parts: Any) -> str:
    basis = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.blake2b(basis, digest_size=12).hexdigest()


def _request(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidEvent(f"expected the request body to be a JSON object, got {type(payload).__name__}")
    return payload


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidEvent(f"{where} must be a JSON object, got {type(value).__name__}", where)
    return value


def _optional_object(value: Any, where: str) -> dict[str, Any]:
    return {} if value is None else _object(value, where)


def _string(value: Any, where: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidEvent(f"{where} is required", where)
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"{where} must be a string, got {type(value).__name__}", where)
    return value


def _required_string(value: Any, where: str) -> str:
    text = _string(value, where)
    if text is None:  # unreachable: _string raises for required values; this narrows the type
        raise InvalidEvent(f"{where} is required", where)
    return text


def _title(*candidates: str | None, fallback: str) -> str:
    for text in candidates:
        if text and text.strip():
            line = text.strip().splitlines()[0].strip()
            return line if len(line) <= _TITLE_MAX else line[: _TITLE_MAX - 1] + "…"
    return fallback


def _time(value: Any, where: str) -> datetime | None:
    """An RFC 3339 / ISO 8601 timestamp with an offset; Go's zero time means "not set"."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"{where} must be an ISO 8601 timestamp string", where)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"{where} is not an ISO 8601 timestamp: {value!r}", where) from None
    if parsed.utcoffset() is None:
        raise InvalidEvent(f"{where} has no UTC offset: {value!r}", where)
    if parsed.year <= 1:  # Go's time.Time{} serializes as 0001-01-01T00:00:00Z
        return None
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:   # year 9999 with a negative offset: past the calendar's end
        raise InvalidEvent(f"{where} is outside the dates a computer calendar holds: {value!r}", where) from None


def _labels(value: Any, where: str) -> dict[str, LabelValue]:
    labels = _optional_object(value, where)
    for key, v in labels.items():
        if not isinstance(v, (str, int, float, bool)):
            raise InvalidEvent(f"{where}.{key} must be a string, number or boolean", f"{where}.{key}")
    return dict(labels)


def _first(labels: Mapping[str, LabelValue], names: Iterable[str]) -> str | None:
    for name in names:
        value = labels.get(name)
        if value not in (None, ""):
            return str(value)
    return None


def _host_of(address: str) -> str | None:
    """The host part of a Prometheus ``instance`` label: host:port, [v6]:port or a URL."""
    if "://" in address:
        return urlsplit(address).hostname
    if address.startswith("["):
        return address[1:].split("]", 1)[0] or None
    if address.count(":") == 1:
        return address.split(":", 1)[0] or None
    return address or None


def _build(data: dict[str, Any], limits: Limits, where: str = "") -> Event:
    """Validate an Event we assembled (from the body's item ``where``, if it has several);
    a failure is still the sender's bad input."""
    try:
        return Event.model_validate(data, context=limits)
    except ValidationError as exc:
        reason, field = describe_validation_error(exc)
        if where:
            field = f"{where}.{field}" if field else where
            reason = f"{where}: {reason}"
        raise InvalidEvent(reason, field) from None


def _severity(raw: Any, where: str) -> Severity:
    if not isinstance(raw, str):
        raise InvalidEvent(f"{where} must be a string", where)
    try:
        return normalize_severity(raw)
    except ValueError as exc:
        raise InvalidEvent(f"{where}: {exc}", where) from None
