"""What a page says at a glance: its title (what is wrong where) and its urgency.

* **Title**: the service (or host) of the alert that opened the incident, its alert name,
  and how many other alerts on how many services joined it:
  ``cartservice: KubePodCrashLooping + 14 related alerts on 3 services``.
* **Urgency**, in PagerDuty's Events v2 terms (``high`` pages someone now, ``low``
  notifies), from the incident's severity and the novelty of the alert family that
  opened it (``Novelty``, read from the opening decision's ``Hold``): a critical
  incident is always high; an error is high unless its family is frequent; a warning is
  low unless its family was never seen before; anything less is low. PagerDuty derives
  urgency from the event's ``severity`` (critical and error high, warning and info
  low), so the event's severity is the one that gives this urgency.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from triage.correlation.holds import Hold
from triage.domain.event import Event, EventKind, Severity, Status

__all__ = ["Novelty", "Urgency", "novelty_of", "page_title", "pagerduty_severity", "urgency_of"]


class Urgency(StrEnum):
    high = "high"
    low = "low"


class Novelty(StrEnum):
    first_seen = "first_seen"   # the family never opened an incident before in this scope
    rare = "rare"               # it did, but none of those outlasted its pause
    frequent = "frequent"       # it did, and one outlasted its pause (or it is damped)


def novelty_of(hold: Hold | None) -> Novelty | None:
    """The novelty of the family that opened an incident, from its opening decision's
    hold (None when the decision says nothing of its family: auto-pause off)."""
    if hold is None or hold.family is None:
        return None
    if hold.damped or hold.sustained > 0:
        return Novelty.frequent
    return Novelty.first_seen if hold.episodes == 0 else Novelty.rare


def urgency_of(severity: Severity, novelty: Novelty | None) -> Urgency:
    if severity is Severity.critical:
        return Urgency.high
    if severity is Severity.error:
        return Urgency.low if novelty is Novelty.frequent else Urgency.high
    if severity is Severity.warning:
        return Urgency.high if novelty is Novelty.first_seen else Urgency.low
    return Urgency.low


def pagerduty_severity(severity: Severity, urgency: Urgency) -> str:
    """The Events v2 ``payload.severity`` that gives ``urgency`` under PagerDuty's
    severity-based urgency rules, as near the incident's own severity as that allows."""
    if urgency is Urgency.high:
        return "critical" if severity is Severity.critical else "error"
    return "warning" if severity.rank >= Severity.warning.rank else "info"


def _name(event: Event) -> str:
    name = event.labels.get("alertname")
    return str(name) if name not in (None, "") else event.title


def page_title(events: Sequence[Event], services: Sequence[str], fallback: str) -> str:
    """"<where>: <alert name> + N related alerts on M services" from the incident's events
    (the opening alert: its earliest firing alert); ``fallback`` (the incident's title)
    when it holds no firing alert."""
    firing = sorted((e for e in events if e.kind is EventKind.alert and e.status is Status.firing),
                    key=lambda e: (e.occurred_at, e.id))
    if not firing:
        return fallback
    first = firing[0]
    where = first.service or first.host or "no service"
    others = {(_name(e), e.service or e.host or "") for e in firing} - {(_name(first), where)}
    title = f"{where}: {_name(first)}"
    if not others:
        return title
    count = len(services) or len({w for _, w in others} | {where})
    plural = "s" if len(others) != 1 else ""
    return f"{title} + {len(others)} related alert{plural} on {count} service{'s' if count != 1 else ''}"
