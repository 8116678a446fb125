"""Webhook bodies from monitoring tools, translated into ``Event`` objects.

Pure functions: each takes the decoded JSON body and the time triage received it,
and returns events (or a small result object) or raises ``InvalidEvent`` naming
the offending field. Nothing here does I/O; the API mounts them as follows.

    POST /webhooks/alertmanager      from_alertmanager      Prometheus Alertmanager webhook_config, version "4"
    POST /v2/enqueue                 from_pagerduty_event   PagerDuty Events API v2 (same body as PagerDuty's
    POST /webhooks/pagerduty/events                         own endpoint, so tools can point at triage instead);
                                                            answer 202 with ``PagerDutyEnqueue.response_body()``
    POST /webhooks/pagerduty         from_pagerduty_webhook PagerDuty Webhooks v3 -> ``Feedback`` (responder
                                                            actions), after ``verify_pagerduty_signature``
    POST /webhooks/grafana           from_grafana           Grafana unified alerting webhook contact point
    POST /webhooks/datadog           from_datadog           Datadog Webhooks integration with the payload
                                                            template ``DATADOG_PAYLOAD_TEMPLATE``
    POST /webhooks/generic           from_generic           one object, or a list of objects, in Event's
                                                            own field names

Conventions shared by every translator:

* Severity is never guessed. A value the source sends is mapped explicitly (or
  through ``normalize_severity``, which rejects unknown words). Where a format
  legitimately carries no severity (an Alertmanager alert without a ``severity``
  label, a PagerDuty acknowledge), the documented default of that translator is
  used and the event is marked with the label ``triage.severity_defaulted = True``.
* Event ids: where the source gives each notification an identity (Datadog
  ``$ID``, OpenTelemetry span ids) the id is derived from it, so a retried HTTP
  delivery stores once. Alertmanager, Grafana and PagerDuty Events give none, and
  their re-notifications of an unchanged alert are real signals that the
  correlator counts as duplicates; so their ids hash the notification content
  *and* ``received_at``: each delivery is one stored event.
* ``fingerprint`` is the source's own dedup key, passed through unchanged.
* Secrets (the PagerDuty ``routing_key``) never reach an Event's labels or raw.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from triage.ingest.decode import describe_validation_error, event_from_dict
from triage.domain.errors import InvalidEvent
from triage.domain.event import (
    DEFAULT_LIMITS,
    HOST_LABELS,
    SERVICE_LABELS,
    Event,
    EventKind,
    LabelValue,
    Limits,
    Severity,
    Status,
    normalize_severity,
)

SEVERITY_DEFAULTED = "triage.severity_defaulted"
TIME_DEFAULTED = "triage.time_defaulted"

# Titles are what a person scans in a list; the full text stays in the body.
_TITLE_MAX = 500

__all__ = [
    "ALERT_DEFAULT_SEVERITY", "DATADOG_PAYLOAD_TEMPLATE", "FEEDBACK_EVENT_TYPES", "Feedback",
    "PAGERDUTY_ACCEPTED", "PD_ACK_RESOLVE_SEVERITY", "PagerDutyEnqueue", "PagerDutyRef",
    "SEVERITY_DEFAULTED", "TIME_DEFAULTED",
    "from_alertmanager", "from_datadog", "from_generic", "from_grafana",
    "from_pagerduty_event", "from_pagerduty_webhook", "verify_pagerduty_signature",
]


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


# --------------------------------------------------------------------------- Alertmanager / Grafana

# Checked in this order. A label named ``service`` is what rules written for
# triage set; ``app`` is the Kubernetes convention; ``job`` is the scrape job,
# which is often a whole fleet ("kubernetes-pods"), so it comes last.
_SERVICE_LABELS = (*SERVICE_LABELS, "app", "job")
ALERT_DEFAULT_SEVERITY = Severity.warning


def _alert_group(
    payload: Any, *, source: str, version: str, received_at: datetime, limits: Limits,
    extra: Callable[[dict[str, Any], str], dict[str, LabelValue]] | None = None,
) -> list[Event]:
    body = _request(payload)
    if body.get("version") != version:
        raise InvalidEvent(
            f"version must be {version!r} (the {source} webhook format triage reads), got {body.get('version')!r}",
            "version")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise InvalidEvent("alerts must be a list", "alerts")
    received = _require_aware(received_at)
    group_key = body.get("groupKey")
    group_fields = {k: body[k] for k in ("receiver", "groupKey", "externalURL") if k in body}
    events = []
    for i, item in enumerate(alerts):
        where = f"alerts[{i}]"
        alert = _object(item, where)
        status_raw = alert.get("status")
        if status_raw not in ("firing", "resolved"):
            raise InvalidEvent(f"{where}.status must be 'firing' or 'resolved', got {status_raw!r}",
                               f"{where}.status")
        status = Status(status_raw)
        labels = _labels(alert.get("labels"), f"{where}.labels")
        annotations = _labels(alert.get("annotations"), f"{where}.annotations")
        starts_at = _time(alert.get("startsAt"), f"{where}.startsAt")
        ends_at = _time(alert.get("endsAt"), f"{where}.endsAt")
        if starts_at is None:
            raise InvalidEvent(f"{where}.startsAt is required", f"{where}.startsAt")
        if status is Status.resolved and ends_at is None:
            raise InvalidEvent(f"{where}.endsAt is required for a resolved alert", f"{where}.endsAt")

        if "severity" in labels and labels["severity"] != "":
            severity = _severity(labels["severity"], f"{where}.labels.severity")
            event_labels: dict[str, LabelValue] = dict(labels)
        else:
            severity = ALERT_DEFAULT_SEVERITY
            event_labels = {**labels, SEVERITY_DEFAULTED: True}
        if extra is not None:
            event_labels.update(extra(alert, where))

        host = _first(labels, HOST_LABELS)
        if host is None and labels.get("instance"):
            host = _host_of(str(labels["instance"]))
        fingerprint = _string(alert.get("fingerprint"), f"{where}.fingerprint", required=False)
        events.append(_build({
            "id": f"{source}-" + _digest(group_key, alert, received.isoformat()),
            "kind": EventKind.alert,
            "source": source,
            # Firing: when the condition began; resolved: when it ended.
            "occurred_at": ends_at if status is Status.resolved else starts_at,
            "service": _first(labels, _SERVICE_LABELS),
            "host": host,
            "severity": severity,
            "status": status,
            "title": _title(str(annotations.get("summary", "")), str(labels.get("alertname", "")),
                            fallback=f"{source} alert {fingerprint or ''}".strip()),
            "body": str(annotations.get("description", "")),
            "labels": event_labels,
            "fingerprint": fingerprint,
            "starts_at": starts_at,
            # A firing alert's endsAt is only Prometheus' "expires unless re-sent" hint.
            "ends_at": ends_at if status is Status.resolved else None,
            "raw": {**alert, **group_fields},
        }, limits, where))
    return events


def from_alertmanager(payload: dict[str, Any], *, received_at: datetime,
                      limits: Limits = DEFAULT_LIMITS) -> list[Event]:
    """One Event per alert of an Alertmanager webhook notification (version "4").

    A group may mix firing and resolved alerts; each keeps its own status. The
    ``fingerprint`` is Alertmanager's, unchanged.

    Severity comes from the ``severity`` label through ``normalize_severity``: an
    unknown word is an error naming ``alerts[i].labels.severity``. Alerts without
    that label are common (it is a convention, not part of Prometheus), so they get
    ``warning`` (``ALERT_DEFAULT_SEVERITY``): urgent enough to be grouped and shown,
    not enough to page on its own. Such events carry the label
    ``triage.severity_defaulted = True`` so the default is visible.

    service: first of labels service, app, job; host: label node/host/hostname,
    else the host part of ``instance``. occurred_at: startsAt when firing, endsAt
    when resolved.

    The id hashes groupKey, the alert object and ``received_at``: Alertmanager has
    no notification id, and its re-notifications (repeat_interval, group changes)
    are real deliveries that the correlator should see and count as duplicates.
    One bad alert rejects the whole notification (the endpoint answers 4xx), so
    the failure shows in Alertmanager's failed-notification metrics and log
    instead of some alerts of the group silently going missing.
    """
    return _alert_group(payload, source="alertmanager", version="4", received_at=received_at, limits=limits)


def _grafana_extra(alert: dict[str, Any], where: str) -> dict[str, LabelValue]:
    values = _optional_object(alert.get("values"), f"{where}.values")
    return {f"grafana.value.{ref}": v for ref, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def from_grafana(payload: dict[str, Any], *, received_at: datetime, limits: Limits = DEFAULT_LIMITS) -> list[Event]:
    """One Event per alert of a Grafana unified alerting webhook (``version`` "1").

    Grafana's body is Alertmanager's shape plus orgId, title, state, message and,
    per alert, values/silenceURL/dashboardURL/panelURL. The same rules as
    ``from_alertmanager`` apply (severity label, default ``warning`` marked with
    ``triage.severity_defaulted``, fingerprint passed through, id per delivery).
    The numeric query results in ``values`` become labels ``grafana.value.<refId>``.
    """
    return _alert_group(payload, source="grafana", version="1", received_at=received_at, limits=limits,
                        extra=_grafana_extra)


# --------------------------------------------------------------------------- PagerDuty Events API v2

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


# --------------------------------------------------------------------------- Datadog

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


# --------------------------------------------------------------------------- generic


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
