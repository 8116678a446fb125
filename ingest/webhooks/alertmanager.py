"""Prometheus Alertmanager (webhook_config, version "4") and Grafana unified alerting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any


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
)

from triage.ingest.webhooks._common import (
    SEVERITY_DEFAULTED,
    _build,
    _digest,
    _first,
    _host_of,
    _labels,
    _object,
    _optional_object,
    _request,
    _require_aware,
    _severity,
    _string,
    _time,
    _title,
)


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
