"""A change to a running system (a deploy, a configuration change, a feature flag): what
an on-call engineer asks about first ("what changed?"), and a probable-cause candidate.

A change never pages and never joins an incident: it is recorded on its own
(``triage.store.changes``) and read back by time and service.

On Kafka a change travels as a log record marked with the label ``event.type``
(``CHANGE_TYPE_LABEL``): ``deployment`` (how Kubernetes rollouts are logged in
../shared/data/alerts) or ``change``, with the change's own fields in ``change.*`` labels
(``change_as_event`` writes them, ``change_from_event`` reads them back). So the webhooks
(PagerDuty change events, ``POST /webhooks/change``) produce changes like every other
event, and a deployment log already on the logs topic is a change without any help.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Final

from triage.domain.event import DEFAULT_LIMITS, Event, EventKind, LabelValue, Limits, Severity

__all__ = ["CHANGE_LABELS", "CHANGE_TYPE_LABEL", "Change", "ChangeKind", "change_as_event", "change_from_event",
           "version_change"]


class ChangeKind(str, Enum):
    deploy = "deploy"            # a new version rolled out (or rolled back)
    config = "config"            # configuration applied
    flag = "flag"                # a feature flag switched
    infrastructure = "infrastructure"   # nodes, networks, certificates, scaling
    other = "other"


@dataclass(frozen=True)
class Change:
    """One change. ``service`` is the name the sender used (map it onto the catalog with
    ``triage.models.mapping``); None when the sender named none. ``description`` is one
    line, or a first line that sums it up and the details after it."""

    id: str
    service: str | None
    kind: ChangeKind
    occurred_at: datetime          # aware, UTC
    description: str
    source: str                    # who told triage: pagerduty, webhook, otel, ...
    version: str | None = None
    previous_version: str | None = None
    who: str | None = None         # a person or a pipeline (ci-bot)
    link: str | None = None        # where to read more (the pipeline run, the pull request)

    @property
    def summary(self) -> str:
        return self.description.partition("\n")[0]


# The label that marks a log record as a change, and its values.
CHANGE_TYPE_LABEL: Final = "event.type"
_MARKERS: Final[dict[str, ChangeKind | None]] = {
    "deployment": ChangeKind.deploy, "deploy": ChangeKind.deploy, "change": None,
}
# The change's own fields, as labels of the log record that carries it.
CHANGE_LABELS: Final = {"kind": "change.kind", "version": "change.version",
                        "previous_version": "change.previous_version", "who": "change.who", "link": "change.link"}
# Where a deployment record that does not use ``change.version`` names its version:
# the shared data's rollout logs (``version``), OpenTelemetry's resource attribute.
_VERSION_LABELS: Final = (CHANGE_LABELS["version"], "version", "service.version")
# Where a record without ``service`` names the deployed workload.
_SERVICE_LABELS: Final = ("service", "k8s.deployment.name", "app.kubernetes.io/name", "app")
_TITLE_MAX = 500


def _text(value: LabelValue | None) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value)
    return text or None


def change_from_event(event: Event) -> Change | None:
    """The change a log record marked with ``event.type`` carries, or None for any other
    event. Cheap for the rest (one label look-up): the pipeline asks it of every event."""
    marker = event.labels.get(CHANGE_TYPE_LABEL)
    if not isinstance(marker, str) or marker.lower() not in _MARKERS:
        return None
    labels = event.labels
    kind = _MARKERS[marker.lower()]
    if kind is None:
        try:
            kind = ChangeKind(str(labels.get(CHANGE_LABELS["kind"], ChangeKind.other.value)).lower())
        except ValueError:
            kind = ChangeKind.other   # a kind of change this release does not know: still a change
    title, body = event.title, event.body
    if not body:
        description = title
    elif body.startswith(title):   # written by ``change_as_event``: the body is the whole text
        description = body
    else:                          # a rollout log: its title sums up, its body has the details
        description = f"{title}\n{body}"
    service = event.service or next((s for k in _SERVICE_LABELS if (s := _text(labels.get(k)))), None)
    return Change(
        id=event.id, service=service, kind=kind, occurred_at=event.occurred_at, description=description,
        source=event.source,
        version=next((v for k in _VERSION_LABELS if (v := _text(labels.get(k)))), None),
        previous_version=_text(labels.get(CHANGE_LABELS["previous_version"])),
        who=_text(labels.get(CHANGE_LABELS["who"])), link=_text(labels.get(CHANGE_LABELS["link"])))


def change_as_event(change: Change, limits: Limits = DEFAULT_LIMITS) -> Event:
    """The log record that carries ``change`` on Kafka; ``change_from_event`` gives it back.
    Validated as every event is, within ``limits`` (pydantic's ``ValidationError`` names
    the field past one)."""
    first = change.summary
    title = first[:_TITLE_MAX] or f"{change.kind.value} change"
    labels: dict[str, LabelValue] = {CHANGE_TYPE_LABEL: "change", CHANGE_LABELS["kind"]: change.kind.value}
    for name in ("version", "previous_version", "who", "link"):
        value = getattr(change, name)
        if value is not None:
            labels[CHANGE_LABELS[name]] = value
    return Event.model_validate({
        "id": change.id, "kind": EventKind.log, "source": change.source, "occurred_at": change.occurred_at,
        "service": change.service, "severity": Severity.info, "title": title,
        "body": change.description if change.description != title else "", "labels": labels,
    }, context=limits)


def version_change(service: str, version: str, occurred_at: datetime, *, previous: str | None,
                   source: str = "otel") -> Change:
    """A service reporting a version it never reported before (OpenTelemetry's
    ``service.version`` resource attribute): a deploy, dated by the first event that
    carried the new version. The id is the service and version, so every consumer that
    sees it, and every redelivery, records the same change once."""
    digest = hashlib.blake2b(f"{service}\x00{version}".encode(), digest_size=12).hexdigest()
    was = f" (was {previous})" if previous else ""
    return Change(id=f"version-{digest}", service=service, kind=ChangeKind.deploy,
                  occurred_at=occurred_at.astimezone(timezone.utc),
                  description=f"{service} reports version {version}{was}", source=source, version=version,
                  previous_version=previous)
