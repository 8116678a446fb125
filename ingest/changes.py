"""Change events over HTTP, translated into the log records that carry changes on Kafka
(``triage.domain.change``). Pure functions, like ``triage.ingest.webhooks``; the API
mounts them:

    POST /v2/change/enqueue   from_pagerduty_change   PagerDuty Events API v2 change events (the body
                                                      PagerDuty takes, so tools can point at triage);
                                                      answer 202 with ``PagerDutyChange.response_body()``
    POST /webhooks/change     from_change_webhook     triage's own: one change object, or a list

Ids: a change that names none gets one hashed from its content (and, when it names no
time either, the time it was received), so a retried POST records it once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from triage.domain.change import Change, ChangeKind, change_as_event
from triage.domain.errors import InvalidEvent
from triage.domain.event import DEFAULT_LIMITS, Event, Limits, without_nul
from triage.ingest.decode import describe_validation_error
from triage.ingest.webhooks._common import (
    _digest, _optional_object, _request, _require_aware, _required_string, _string, _time,
)

__all__ = ["ChangeIn", "PagerDutyChange", "from_change_webhook", "from_pagerduty_change"]

PAGERDUTY_SUMMARY_MAX = 1024   # PagerDuty's own bound on payload.summary


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character, which the store cannot hold")
    return value


Short = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]


class ChangeIn(BaseModel):
    """One change in triage's own webhook format (``POST /webhooks/change``)."""

    model_config = ConfigDict(extra="forbid")

    id: Short | None = Field(None, description="the change's id at its source; derived from the content if absent")
    service: Short = Field(description="the service changed, as the catalog or the events name it")
    kind: ChangeKind = ChangeKind.deploy
    occurred_at: AwareDatetime | None = Field(None, description="when it happened; the time received if absent")
    description: str = Field(min_length=1, description="one line, or a first line that sums it up and the "
                                                       "details after it")
    version: Short | None = None
    previous_version: Short | None = None
    who: Short | None = Field(None, description="a person or a pipeline")
    link: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_no_nul)] | None = None
    source: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_nul)] = "webhook"


def _event(change: Change, limits: Limits, where: str = "") -> Event:
    """The log record carrying ``change``, validated as every event is."""
    try:
        return change_as_event(change, limits)
    except ValidationError as exc:
        reason, name = describe_validation_error(exc)
        # The record's title and body are the change's description.
        name = "description" if name in ("title", "body") else name
        field_path = f"{where}.{name}" if where and name else (where or name)
        raise InvalidEvent(f"{where}: {reason}" if where else reason, field_path) from None


def _from_item(item: Any, received: datetime, limits: Limits, where: str) -> Event:
    if not isinstance(item, dict):
        raise InvalidEvent(f"{where or 'the body'} must be a JSON object, got {type(item).__name__}", where or None)
    try:
        given = ChangeIn.model_validate(item)
    except ValidationError as exc:
        reason, name = describe_validation_error(exc)
        field_path = f"{where}.{name}" if where and name else (where or name)
        raise InvalidEvent(f"{where}: {reason}" if where else reason, field_path) from None
    occurred = given.occurred_at or received
    change_id = given.id or "change-" + _digest(item, None if given.occurred_at else received.isoformat())
    change = Change(id=change_id, service=given.service, kind=given.kind, occurred_at=occurred,
                    description=without_nul(given.description), source=given.source, version=given.version,
                    previous_version=given.previous_version, who=given.who, link=given.link)
    return _event(change, limits, where)


def from_change_webhook(payload: dict[str, Any] | list[Any], *, received_at: datetime,
                        limits: Limits = DEFAULT_LIMITS) -> list[Event]:
    """One ``ChangeIn`` object or a list of them -> the log records that carry them. A bad
    item is refused naming its index and field (``[2].service``), and nothing is sent."""
    received = _require_aware(received_at)
    if isinstance(payload, dict):
        return [_from_item(payload, received, limits, "")]
    if not isinstance(payload, list):
        raise InvalidEvent(f"expected a JSON object or a list of objects, got {type(payload).__name__}")
    return [_from_item(item, received, limits, f"[{i}]") for i, item in enumerate(payload)]


@dataclass(frozen=True)
class PagerDutyChange:
    """What a change event became, and what to answer (202 + ``response_body``).
    ``routing_key`` only travels back for the endpoint's key check."""

    events: list[Event]
    routing_key: str = field(repr=False, compare=False, default="")

    @staticmethod
    def response_body() -> dict[str, str]:
        return {"status": "success", "message": "Change event processed"}


# Where in custom_details a change event names what triage records (first found wins).
_PD_SERVICE = ("service",)
_PD_KIND = ("change_kind", "kind")
_PD_VERSION = ("version", "revision")
_PD_WHO = ("who", "author", "user")
_KINDS = frozenset(k.value for k in ChangeKind)


def _detail(details: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = details.get(name)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
            text = str(value).strip()
            if len(text) > 200 or "\x00" in text:
                raise InvalidEvent(f"payload.custom_details.{name} must be at most 200 characters, without NUL",
                                   f"payload.custom_details.{name}")
            return text
    return None


def from_pagerduty_change(payload: dict[str, Any], *, received_at: datetime,
                          limits: Limits = DEFAULT_LIMITS) -> PagerDutyChange:
    """Translate one PagerDuty Events API v2 change event.

    ``routing_key`` and ``payload.summary`` are required (at most 1,024 characters);
    ``payload.source``, ``payload.timestamp``, ``payload.custom_details`` and ``links``
    are optional, as at PagerDuty. PagerDuty routes a change to a service by its routing
    key; here the routing key is an API key, so the service is ``custom_details.service``,
    else ``payload.source``. From ``custom_details`` also: ``change_kind`` or ``kind``
    (deploy, config, flag, infrastructure, other; anything else is ``other``, the default),
    ``version`` or ``revision``, ``who``, ``author`` or ``user``. The link is the first of
    ``links``. The description is the summary, then the custom details, one per line.
    """
    body = _request(payload)
    received = _require_aware(received_at)
    routing_key = _required_string(body.get("routing_key"), "routing_key")
    details = _optional_object(body.get("payload"), "payload")
    summary = _required_string(details.get("summary"), "payload.summary")
    if len(summary) > PAGERDUTY_SUMMARY_MAX:
        raise InvalidEvent(f"payload.summary is longer than {PAGERDUTY_SUMMARY_MAX} characters", "payload.summary")
    source = _string(details.get("source"), "payload.source", required=False)
    custom = _optional_object(details.get("custom_details"), "payload.custom_details")
    links = body.get("links")
    link = None
    if links is not None:
        if not isinstance(links, list):
            raise InvalidEvent("links must be a list of objects with href", "links")
        for i, item in enumerate(links):
            href = _required_string(item.get("href") if isinstance(item, dict) else None, f"links[{i}].href")
            link = link or href
    occurred = _time(details.get("timestamp"), "payload.timestamp")
    raw = {k: v for k, v in body.items() if k != "routing_key"}
    kind_word = (_detail(custom, _PD_KIND) or "").lower()
    kind = ChangeKind(kind_word) if kind_word in _KINDS else ChangeKind.other
    lines = [f"{k}: {v if isinstance(v, str) else json.dumps(v, default=str)}" for k, v in custom.items()]
    service = _detail(custom, _PD_SERVICE)
    if service is None and source is not None:
        if len(source) > 200 or "\x00" in source:
            raise InvalidEvent("payload.source names the service: at most 200 characters, without NUL",
                               "payload.source")
        service = source
    change = Change(
        id="pagerduty-change-" + _digest(raw, None if occurred else received.isoformat()),
        service=service, kind=kind, occurred_at=occurred or received,
        description=without_nul("\n".join([summary, *lines])), source="pagerduty",
        version=_detail(custom, _PD_VERSION), who=_detail(custom, _PD_WHO), link=link)
    if link is not None and "\x00" in link:
        raise InvalidEvent("a link contains a NUL character, which the store cannot hold", "links")
    return PagerDutyChange(events=[_event(change, limits)], routing_key=routing_key)
