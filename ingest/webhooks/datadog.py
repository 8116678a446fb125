"""Datadog: the Webhooks integration with triage's payload template."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any


from triage.domain.errors import InvalidEvent
from triage.domain.event import (
    DEFAULT_LIMITS,
    Event,
    EventKind,
    LabelValue,
    Limits,
    Severity,
    Status,
)

from triage.ingest.webhooks._common import (
    TIME_DEFAULTED,
    _build,
    _digest,
    _first,
    _request,
    _require_aware,
    _severity,
    _string,
    _time,
    _title,
)


DATADOG_PAYLOAD_TEMPLATE = """{
  "id": "$ID",
  "title": "$EVENT_TITLE",
  "body": "$TEXT_ONLY_MSG",
  "transition": "$ALERT_TRANSITION",
  "alert_type": "$ALERT_TYPE",
  "alert_id": "$ALERT_ID",
  "alert_title": "$ALERT_TITLE",
  "alert_cycle_key": "$ALERT_CYCLE_KEY",
  "aggreg_key": "$AGGREG_KEY",
  "alert_priority": "$ALERT_PRIORITY",
  "priority": "$PRIORITY",
  "alert_scope": "$ALERT_SCOPE",
  "alert_query": "$ALERT_QUERY",
  "alert_metric": "$ALERT_METRIC",
  "hostname": "$HOSTNAME",
  "tags": "$TAGS",
  "date": "$DATE",
  "last_updated": "$LAST_UPDATED",
  "link": "$LINK",
  "event_type": "$EVENT_TYPE",
  "org": {"id": "$ORG_ID", "name": "$ORG_NAME"}
}"""
"""The custom payload to paste into Datadog's Webhooks integration for triage.

Datadog replaces each $VARIABLE and leaves "" for those that do not apply.
Datadog's default payload lacks the transition, so it is rejected with a
reason pointing here.
"""

# Every $ALERT_TRANSITION value Datadog documents, mapped explicitly.
_DD_TRANSITIONS: dict[str, Status] = {
    "triggered": Status.firing, "re-triggered": Status.firing, "renotify": Status.firing,
    "warn": Status.firing, "re-warn": Status.firing,
    "no data": Status.firing, "re-no data": Status.firing,
    "recovered": Status.resolved,
}
_DD_ALERT_TYPES = {"error": Severity.error, "warning": Severity.warning,
                   "info": Severity.info, "success": Severity.info}


def _dd_tags(text: Any, where: str) -> dict[str, LabelValue]:
    """"env:prod, service:web, monitor" -> {"env": "prod", "service": "web", "monitor": True}."""
    if text in (None, ""):
        return {}
    if not isinstance(text, str):
        raise InvalidEvent(f"{where} must be a comma-separated string", where)
    tags: dict[str, LabelValue] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition(":")
        if not sep:
            tags[key] = True
        elif key in tags and isinstance(tags[key], str) and value not in str(tags[key]).split(","):
            tags[key] = f"{tags[key]},{value}"  # a key tagged twice keeps both values
        else:
            tags[key] = value
    return tags


def _epoch_or_iso(value: Any, where: str) -> datetime | None:
    """$DATE / $LAST_UPDATED: epoch milliseconds (Datadog's documented form), seconds, or ISO 8601."""
    if value in (None, ""):
        return None
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if is_number or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
        number = float(value)
        seconds = number / 1000 if number >= 1e11 else number  # 1e11 s is the year 5138
        try:
            return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)
        except (OverflowError, ValueError):   # past the calendar's end; NaN
            raise InvalidEvent(f"{where} is not a time a computer calendar holds: {value!r}", where) from None
    return _time(value, where)


def from_datadog(payload: dict[str, Any], *, received_at: datetime, limits: Limits = DEFAULT_LIMITS) -> list[Event]:
    """One Event from a Datadog monitor notification sent with ``DATADOG_PAYLOAD_TEMPLATE``.

    status: ``transition`` ($ALERT_TRANSITION) mapped explicitly: Triggered,
    Re-Triggered, Renotify, Warn, Re-Warn, No Data, Re-No Data -> firing;
    Recovered -> resolved; anything else (including empty, as in events that are
    not monitor notifications) is an error.

    severity, first rule that applies:
      1. Warn / Re-Warn -> warning (the monitor crossed its warning threshold, not
         its alert threshold, whatever the monitor's priority);
      2. ``alert_priority`` ($ALERT_PRIORITY, P1..P5) -> P1 critical, P2 error,
         P3 warning, P4/P5 info;
      3. ``alert_type`` ($ALERT_TYPE): error, warning, info; success -> info;
      4. otherwise an error naming ``alert_type``.

    fingerprint = ``aggreg_key`` ($AGGREG_KEY). id = ``datadog-$ID``: Datadog's
    event id, so its retries of one delivery store once. occurred_at = $DATE, else
    $LAST_UPDATED, else ``received_at`` (marked ``triage.time_defaulted``).
    Labels: $TAGS and $ALERT_SCOPE parsed as key:value, plus datadog.* fields;
    service from the ``service`` tag, host from $HOSTNAME or the ``host`` tag.
    """
    body = _request(payload)
    received = _require_aware(received_at)
    transition_raw = body.get("transition")
    if not isinstance(transition_raw, str) or transition_raw.strip().lower() not in _DD_TRANSITIONS:
        hint = ("" if transition_raw not in (None, "") else
                " (is the webhook using triage's DATADOG_PAYLOAD_TEMPLATE, and is this a monitor notification?)")
        raise InvalidEvent(
            "transition ($ALERT_TRANSITION) must be one of Triggered, Re-Triggered, Renotify, Warn, Re-Warn, "
            f"No Data, Re-No Data, Recovered; got {transition_raw!r}{hint}", "transition")
    transition = transition_raw.strip().lower()
    status = _DD_TRANSITIONS[transition]

    priority = _string(body.get("alert_priority"), "alert_priority", required=False)
    alert_type = _string(body.get("alert_type"), "alert_type", required=False)
    if transition in ("warn", "re-warn"):
        severity, severity_raw = Severity.warning, transition_raw
    elif priority is not None:
        severity, severity_raw = _severity(priority, "alert_priority"), priority
    elif alert_type is not None and alert_type.lower() in _DD_ALERT_TYPES:
        severity, severity_raw = _DD_ALERT_TYPES[alert_type.lower()], alert_type
    else:
        raise InvalidEvent(
            f"alert_type ($ALERT_TYPE) must be one of error, warning, info, success when alert_priority "
            f"is empty; got {alert_type!r}", "alert_type")

    labels: dict[str, LabelValue] = {**_dd_tags(body.get("tags"), "tags"),
                                     **_dd_tags(body.get("alert_scope"), "alert_scope")}
    for key in ("alert_id", "alert_cycle_key", "alert_metric", "priority", "event_type"):
        value = _string(body.get(key), key, required=False)
        if value is not None:
            labels[f"datadog.{key}"] = value
    labels["datadog.transition"] = transition_raw
    if transition in ("no data", "re-no data"):
        labels["datadog.no_data"] = True

    occurred_at = _epoch_or_iso(body.get("date"), "date") or _epoch_or_iso(body.get("last_updated"),
                                                                          "last_updated")
    if occurred_at is None:
        occurred_at = received
        labels[TIME_DEFAULTED] = True
    event_id = _string(body.get("id"), "id", required=False)
    hostname = _string(body.get("hostname"), "hostname", required=False)
    title = _string(body.get("title"), "title", required=False)
    alert_title = _string(body.get("alert_title"), "alert_title", required=False)
    text = _string(body.get("body"), "body", required=False) or ""
    return [_build({
        "id": (f"datadog-{event_id}" if event_id and len(event_id) <= 150
               else "datadog-" + _digest(body, received.isoformat())),
        "kind": EventKind.alert,
        "source": "datadog",
        "occurred_at": occurred_at,
        "service": _first(labels, ("service",)),
        "host": hostname or _first(labels, ("host",)),
        "severity": severity,
        "severity_raw": severity_raw,
        "status": status,
        "title": _title(title, alert_title, fallback=f"Datadog monitor {labels.get('datadog.alert_id', '')}".strip()),
        "body": text,
        "labels": labels,
        "fingerprint": _string(body.get("aggreg_key"), "aggreg_key", required=False),
        "ends_at": occurred_at if status is Status.resolved else None,
        "raw": body,
    }, limits)]
