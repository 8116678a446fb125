"""Bytes to ``Event``: the generic JSON format (also the shape of ../shared/data/alerts)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pydantic_core
from pydantic import ValidationError

from triage.domain.errors import DecodeError, InvalidEvent, NotJSON, TooLarge
from triage.domain.event import DEFAULT_LIMITS, Event, Limits

# Ground-truth fields of labeled data sets: never let them reach the engine.
_DROPPED_FIELDS = frozenset({"truth_incident", "truth_root_cause"})


def describe_validation_error(exc: ValidationError) -> tuple[str, str | None]:
    """One line naming the first bad field, for DLQ headers and 422 bodies."""
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    where = f"{field}: " if field else ""
    return f"{where}{first['msg']}{more}", field


def event_from_dict(data: Any, *, default_id_basis: bytes | None = None, limits: Limits = DEFAULT_LIMITS) -> Event:
    """Validate one JSON object as an Event, within ``limits``.

    An object without ``id`` gets one derived from its content, so that a
    redelivered copy maps to the same event and is stored once.
    """
    if not isinstance(data, dict):
        raise InvalidEvent(f"expected a JSON object, got {type(data).__name__}")
    data = {k: v for k, v in data.items() if k not in _DROPPED_FIELDS}
    if not data.get("id"):
        basis = default_id_basis or json.dumps(data, sort_keys=True, default=str).encode()
        data["id"] = "evt-" + hashlib.blake2b(basis, digest_size=12).hexdigest()
    try:
        return Event.model_validate(data, context=limits)
    except ValidationError as exc:
        reason, field = describe_validation_error(exc)
        raise InvalidEvent(reason, field) from None


# RFC 8259 lets a parser ignore a byte order mark; some Windows tools write one.
_BOM = b"\xef\xbb\xbf"


def parse_json(value: bytes) -> Any:
    """UTF-8 JSON as it comes off the wire, by pydantic-core's parser (what validation
    uses anyway): NaN and infinities accepted as ``json.loads`` accepts them, at about
    twice its speed, which a consumer decoding every message feels. A leading byte
    order mark is ignored, as ``json.loads`` and the webhook intake ignore it."""
    try:
        return pydantic_core.from_json(value.removeprefix(_BOM))
    except ValueError as exc:
        raise NotJSON(f"not valid UTF-8 JSON: {exc}") from None


def looks_like_json(value: bytes) -> bool:
    """Whether ``value`` starts like a JSON object or array (after a byte order mark and
    whitespace): what tells JSON from protobuf on a topic that may carry either."""
    return value.removeprefix(_BOM).lstrip()[:1] in (b"{", b"[")


def check_size(value: bytes, limits: Limits) -> None:
    """Refuse a message (or request body) larger than ``limits`` allows, before parsing it."""
    if len(value) > limits.max_message_bytes:
        raise TooLarge(f"the message is {len(value)} bytes, more than the limit of {limits.max_message_bytes} "
                       "(TRIAGE_MAX_BODY_BYTES)")


def decode_event(value: bytes | None, limits: Limits = DEFAULT_LIMITS) -> Event:
    """Decode one Kafka message value (UTF-8 JSON object) into an Event."""
    if value is None:
        raise NotJSON("empty message (tombstone)")
    check_size(value, limits)
    return event_from_dict(parse_json(value), default_id_basis=value, limits=limits)


__all__ = ["DecodeError", "check_size", "decode_event", "event_from_dict", "describe_validation_error", "looks_like_json",
           "parse_json"]
