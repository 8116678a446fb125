"""PagerDuty: Events API v2 bodies (what tools configured for PagerDuty send) and signed
Webhooks v3 (responder actions, which become feedback)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
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
    SEVERITY_DEFAULTED,
    TIME_DEFAULTED,
    _build,
    _digest,
    _object,
    _optional_object,
    _request,
    _require_aware,
    _required_string,
    _string,
    _time,
    _title,
)


_PD_SEVERITIES = {"critical": Severity.critical, "error": Severity.error,
                  "warning": Severity.warning, "info": Severity.info}
_PD_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_ACK_RESOLVE_SEVERITY = Severity.info
PAGERDUTY_ACCEPTED = 202


@dataclass(frozen=True)
class PagerDutyEnqueue:
    """What an Events API v2 request became, and what to answer (202 + ``response_body``).

    ``routing_key`` is handed back only so the endpoint can check it against the
    keys it accepts; it is never copied into an Event, and not shown by repr.
    """

    events: list[Event]
    dedup_key: str
    routing_key: str = field(repr=False, compare=False, default="")

    def response_body(self) -> dict[str, str]:
        return {"status": "success", "message": "Event processed", "dedup_key": self.dedup_key}


def from_pagerduty_event(payload: dict[str, Any], *, received_at: datetime,
                         limits: Limits = DEFAULT_LIMITS) -> PagerDutyEnqueue:
    """Translate one PagerDuty Events API v2 alert event (trigger/acknowledge/resolve).

    * trigger -> a firing alert; payload.summary, source and severity are required,
      severity is one of PagerDuty's four words (critical, error, warning, info).
    * resolve -> a resolved alert with the same fingerprint.
    * acknowledge -> a firing alert with label ``pagerduty.action = acknowledge``:
      while the alert is open the correlator sees the same fingerprint and status
      and counts it as a duplicate rather than opening an incident.
    * acknowledge/resolve carry no severity in the format: they get ``info`` and
      ``triage.severity_defaulted = True`` unless a payload.severity is present.

    ``dedup_key`` is the fingerprint. A trigger without one gets a deterministic
    key hashed from summary, source, component, group and class (not severity or
    timestamp): PagerDuty would mint a random UUID and open a new alert each time,
    but for triage two identical triggers are the same problem. It is returned so
    the sender can acknowledge/resolve with it, as PagerDuty does.

    service = payload.group (a cluster of sources, closer to triage's notion of a
    service than the broken part named by component), else payload.component;
    host = payload.source.
    ``routing_key`` is required (it authenticates the sender) and is removed from raw.
    """
    body = _request(payload)
    received = _require_aware(received_at)
    routing_key = _required_string(body.get("routing_key"), "routing_key")
    action = body.get("event_action")
    if action not in _PD_ACTIONS:
        raise InvalidEvent(f"event_action must be one of {', '.join(_PD_ACTIONS)}, got {action!r}",
                           "event_action")
    details = _optional_object(body.get("payload"), "payload")
    dedup_key = _string(body.get("dedup_key"), "dedup_key", required=action != "trigger")
    if dedup_key is not None and len(dedup_key) > 255:
        raise InvalidEvent("dedup_key is longer than 255 characters", "dedup_key")

    labels: dict[str, LabelValue] = {"pagerduty.action": action}
    summary = source = None
    if action == "trigger" or details:
        summary = _string(details.get("summary"), "payload.summary", required=action == "trigger")
        source = _string(details.get("source"), "payload.source", required=action == "trigger")
    if summary is not None and len(summary) > 1024:
        raise InvalidEvent("payload.summary is longer than 1024 characters", "payload.summary")
    raw_severity = details.get("severity")
    if raw_severity is None and action != "trigger":
        severity = PD_ACK_RESOLVE_SEVERITY
        labels[SEVERITY_DEFAULTED] = True
    elif isinstance(raw_severity, str) and raw_severity in _PD_SEVERITIES:
        severity = _PD_SEVERITIES[raw_severity]
    else:
        raise InvalidEvent(
            f"payload.severity must be one of critical, error, warning, info, got {raw_severity!r}",
            "payload.severity")
    component = _string(details.get("component"), "payload.component", required=False)
    group = _string(details.get("group"), "payload.group", required=False)
    event_class = _string(details.get("class"), "payload.class", required=False)
    for key, value in (("component", component), ("group", group), ("class", event_class)):
        if value is not None:
            labels[f"pagerduty.{key}"] = value
    if dedup_key is None:
        dedup_key = "triage-" + _digest(summary, source, component, group, event_class)

    occurred_at = _time(details.get("timestamp"), "payload.timestamp")
    if occurred_at is None:
        occurred_at = received
        labels[TIME_DEFAULTED] = True
    custom = details.get("custom_details")
    if isinstance(custom, dict):
        text = "\n".join(f"{k}: {v if isinstance(v, str) else json.dumps(v, default=str)}"
                         for k, v in custom.items())
    else:
        text = "" if custom is None else str(custom)
    raw = {k: v for k, v in body.items() if k != "routing_key"}
    event = _build({
        "id": "pagerduty-" + _digest(dedup_key, action, raw, received.isoformat()),
        "kind": EventKind.alert,
        "source": "pagerduty",
        "occurred_at": occurred_at,
        "service": group or component,
        "host": source,
        "severity": severity,
        "severity_raw": raw_severity if isinstance(raw_severity, str) else None,
        "status": Status.resolved if action == "resolve" else Status.firing,
        "title": _title(summary, fallback=f"PagerDuty {action} for {dedup_key}"),
        "body": text,
        "labels": labels,
        "fingerprint": dedup_key,
        "ends_at": occurred_at if action == "resolve" else None,
        "raw": raw,
    }, limits)
    return PagerDutyEnqueue(events=[event], dedup_key=dedup_key, routing_key=routing_key)


# --------------------------------------------------------------------------- PagerDuty Webhooks v3

# event_type -> the data.type its payload carries. Only incident events that say
# something about how responders treated triage's pages are feedback.
FEEDBACK_EVENT_TYPES: dict[str, str] = {
    "incident.triggered": "incident",
    "incident.acknowledged": "incident",
    "incident.unacknowledged": "incident",
    "incident.resolved": "incident",
    "incident.reopened": "incident",
    "incident.reassigned": "incident",
    "incident.escalated": "incident",
    "incident.delegated": "incident",
    "incident.priority_updated": "incident",
    "incident.responder.added": "incident_responder",
    "incident.responder.replied": "incident_responder",
    "incident.annotated": "incident_note",
}


@dataclass(frozen=True)
class PagerDutyRef:
    """A PagerDuty resource reference (user, service, ...): ``name`` is its summary."""

    id: str | None
    name: str | None
    type: str | None = None
    email: str | None = None
    html_url: str | None = None


@dataclass(frozen=True)
class Feedback:
    """What a responder did with an incident, from a PagerDuty v3 webhook.

    ``incident_key`` is the Events API dedup_key the incident was opened with, so
    feedback on incidents triage forwarded can be joined back to triage's own.
    Fields a given event_type does not carry are None / empty.
    """

    event_id: str
    event_type: str
    occurred_at: datetime
    incident_id: str | None
    incident_number: int | None = None
    incident_key: str | None = None
    title: str | None = None
    status: str | None = None
    urgency: str | None = None
    priority: str | None = None
    service: PagerDutyRef | None = None
    html_url: str | None = None
    agent: PagerDutyRef | None = None
    assignees: tuple[PagerDutyRef, ...] = ()
    responders: tuple[PagerDutyRef, ...] = ()
    note: str | None = None
    resolution: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _ref(value: Any, where: str) -> PagerDutyRef | None:
    if value is None:
        return None
    ref = _object(value, where)

    def text(key: str) -> str | None:
        v = ref.get(key)
        return v if isinstance(v, str) and v else None

    return PagerDutyRef(id=text("id"), name=text("summary") or text("name"), type=text("type"),
                        email=text("email"), html_url=text("html_url"))


def _refs(value: Any, where: str) -> tuple[PagerDutyRef, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidEvent(f"{where} must be a list", where)
    refs = (_ref(v, f"{where}[{i}]") for i, v in enumerate(value))
    return tuple(r for r in refs if r is not None)


def from_pagerduty_webhook(payload: dict[str, Any], *, received_at: datetime) -> Feedback:
    """Translate a PagerDuty v3 webhook (``{"event": {...}}``) into ``Feedback``.

    Accepted event types are ``FEEDBACK_EVENT_TYPES`` (triggered, acknowledged,
    resolved, reassigned, responder.added, annotated and the other incident state
    changes); anything else, such as service.updated, raises ``InvalidEvent`` on
    ``event.event_type``. Verify the signature with ``verify_pagerduty_signature``
    on the raw body first.
    """
    _require_aware(received_at)
    event = _object(_request(payload).get("event"), "event")
    event_id = _required_string(event.get("id"), "event.id")
    event_type = _required_string(event.get("event_type"), "event.event_type")
    expected_type = FEEDBACK_EVENT_TYPES.get(event_type)
    if expected_type is None:
        raise InvalidEvent(
            f"event.event_type {event_type!r} is not one triage takes as feedback "
            f"(accepted: {', '.join(sorted(FEEDBACK_EVENT_TYPES))})", "event.event_type")
    occurred_at = _time(event.get("occurred_at"), "event.occurred_at")
    if occurred_at is None:
        raise InvalidEvent("event.occurred_at is required", "event.occurred_at")
    data = _object(event.get("data"), "event.data")
    if data.get("type") != expected_type:
        raise InvalidEvent(f"event.data.type must be {expected_type!r} for {event_type}, got {data.get('type')!r}",
                           "event.data.type")
    agent = _ref(event.get("agent"), "event.agent")

    if expected_type == "incident":
        number = data.get("number")
        if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
            raise InvalidEvent("event.data.number must be an integer", "event.data.number")
        resolve_reason = data.get("resolve_reason")
        resolution = None
        if isinstance(resolve_reason, dict):
            resolution = resolve_reason.get("type") or resolve_reason.get("summary")
        elif isinstance(resolve_reason, str):
            resolution = resolve_reason
        priority = _ref(data.get("priority"), "event.data.priority")
        return Feedback(
            event_id=event_id, event_type=event_type, occurred_at=occurred_at,
            incident_id=_string(data.get("id"), "event.data.id"),
            incident_number=number,
            incident_key=_string(data.get("incident_key"), "event.data.incident_key", required=False),
            title=_string(data.get("title"), "event.data.title", required=False),
            status=_string(data.get("status"), "event.data.status", required=False),
            urgency=_string(data.get("urgency"), "event.data.urgency", required=False),
            priority=priority.name if priority else None,
            service=_ref(data.get("service"), "event.data.service"),
            html_url=_string(data.get("html_url"), "event.data.html_url", required=False),
            agent=agent,
            assignees=_refs(data.get("assignees"), "event.data.assignees"),
            resolution=resolution,
            raw=payload,
        )

    # incident_note and incident_responder point at the incident by reference only.
    incident = _object(data.get("incident"), "event.data.incident")
    responder = _ref(data.get("user"), "event.data.user") if expected_type == "incident_responder" else None
    note_field = "content" if expected_type == "incident_note" else "message"
    return Feedback(
        event_id=event_id, event_type=event_type, occurred_at=occurred_at,
        incident_id=_string(incident.get("id"), "event.data.incident.id"),
        title=_string(incident.get("summary"), "event.data.incident.summary", required=False),
        html_url=_string(incident.get("html_url"), "event.data.incident.html_url", required=False),
        agent=agent,
        responders=(responder,) if responder else (),
        note=_string(data.get(note_field), f"event.data.{note_field}", required=False),
        raw=payload,
    )


def verify_pagerduty_signature(raw_body: bytes, header: str | None, secrets: list[str]) -> bool:
    """True when any ``v1=<hex>`` signature in X-PagerDuty-Signature matches any secret.

    PagerDuty signs the exact request bytes with HMAC-SHA256 once per active secret
    and joins the results with commas, so during a rotation either secret passes.
    Always compares every pair with ``hmac.compare_digest`` (no early exit on a
    prefix match). A missing header or no configured secret is a failure.
    """
    if not header or not secrets:
        return False
    offered = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    expected = [hmac.new(s.encode(), raw_body, hashlib.sha256).hexdigest() for s in secrets if s]
    matched = False
    for candidate in offered:
        for good in expected:
            matched |= hmac.compare_digest(candidate.lower().encode(), good.encode())
    return matched
