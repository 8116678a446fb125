"""When an incident pages: Alertmanager's timers, auto-pause, and damping of chronic and
flapping alert families (``holds``). The correlator asks ``Paging`` at every firing
alert and every resolve; the answers change the incident (``page_due_at``,
``last_notified_at``, ``damped``) and the scope's ``AlertHistory``, and the holds and
releases go into the decision's evidence.

A damped incident's ``page_due_at`` is when its hold expires (``Hold.until``: the
family's longest lone episode plus its pause after it opened): if it still fires
then, the correlator (at its next alert) or the held-pages ticker
(``paging/held_pages.py``, which sends first pages whose ``page_due_at`` is over)
pages it, as it pages any first page held that long. When it changes before
(``Release``), its ``page_due_at`` becomes the end of its pause, or now if that is
over, and it pages as any other incident.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from triage.correlation.holds import AlertHistory, Change, Hold, HoldKind, Release
from triage.correlation.state import IncidentKind, IncidentState
from triage.domain.event import Event, EventKind, Severity, Status
from triage.models.parameters import CorrelationParameters

__all__ = ["Paging"]


def _seconds(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds(), 3)


class Paging:
    """The first-page and update-page decisions of one correlator's parameters."""

    def __init__(self, parameters: CorrelationParameters) -> None:
        self.p = parameters
        self._pause = timedelta(seconds=parameters.auto_pause)

    def due(self, incident: IncidentState, now: datetime, *, new_alert: bool) -> bool:
        """Alertmanager's timers (first page, update after group_interval, repeat), the
        first page held until ``page_due_at`` (auto-pause; none while damped)."""
        if not incident.is_open or incident.kind != IncidentKind.incident:
            return False
        last = incident.last_notified_at
        if last is None:
            due = incident.page_due_at is not None and now >= incident.page_due_at
        else:
            since = _seconds(now, last)
            due = since >= (self.p.group_interval if new_alert else self.p.repeat_interval)
        if due:
            incident.last_notified_at = now
        return due

    def firing(self, incident: IncidentState, event: Event, family: str, now: datetime, history: AlertHistory,
               *, opening: bool) -> Hold | None:
        """A firing alert of ``family`` ("<node>|<template id>") joins ``incident``;
        ``opening``: it makes the incident one (a new incident, or a noise group's first
        alert). Returns why its first page is held."""
        before = (0, 0)
        if opening:
            incident.family = family
            hold = self._damping(family, event, now, history)
            record = history.families.get(family)
            before = (record.episodes, record.sustained) if record is not None else (0, 0)
            history.opened(family, event.title, now)
            if hold is not None:
                incident.damped, incident.page_due_at = hold, hold.until
                return hold
        if incident.page_due_at is None and incident.damped is None and incident.last_notified_at is None:
            incident.page_due_at = now + self._pause
            if self.p.auto_pause > 0:
                if not opening:
                    return Hold(HoldKind.auto_pause, incident.page_due_at)
                # with the family's history: what the page's urgency reads as novelty
                return Hold(HoldKind.auto_pause, incident.page_due_at, family, event.title[:200], *before)
        return None

    def changed(self, incident: IncidentState, event: Event, footprint: str, now: datetime,
                history: AlertHistory) -> Release | None:
        """An event (``footprint``: its "<node>|<template id>") joins a damped incident:
        the release, if the incident changed with it (a more severe alert, another
        service or host, another template: an incident joining the family's episode).
        Its first page then falls due when its pause is over, or now."""
        assert incident.damped is not None
        release = self._change(incident, event, footprint, history)
        if release is not None:
            incident.damped = None
            due = max(now, incident.opened_at + self._pause)
            incident.page_due_at = due if incident.page_due_at is None else min(incident.page_due_at, due)
        return release

    def resolved(self, incident: IncidentState, at: datetime, history: AlertHistory) -> None:
        """``incident`` resolved at ``at``: an episode of its family that outlasted its
        pause (it paged, or would have but for damping) counts toward damping the
        family's next ones."""
        if (incident.family is not None and not incident.transient and incident.kind == IncidentKind.incident
                and at - incident.opened_at >= self._pause):
            alone = all(key == incident.family for key in incident.footprint)
            history.sustained(incident.family, incident.severity, alone=alone,
                              lasted_s=_seconds(at, incident.opened_at), alerts=incident.alert_count)

    def _damping(self, family: str, event: Event, now: datetime, history: AlertHistory) -> Hold | None:
        window = self.p.chronic_window
        record = history.families.get(family)
        # A critical alert is never damped: it pages at high urgency, however often it came.
        # Only a family whose episodes fire and clear on their own is: one whose episodes
        # came with other alerts, logs or spans is a real incident's symptom.
        if window <= 0 or record is None or not record.fires_alone or event.severity is Severity.critical:
            return None
        since = now.timestamp() - record.last_episode_at
        if since > window or event.severity.rank > record.severity.rank:
            return None
        kind = HoldKind.flapping if since <= self.p.max_incident_age else HoldKind.chronic
        # The hold expires when the episode outlasts the family's longest lone one by its pause.
        span = record.longest_s + self.p.auto_pause
        until = now + timedelta(seconds=span)
        return Hold(kind, until, family, record.title, record.episodes, record.sustained,
                    datetime.fromtimestamp(record.first_seen, now.tzinfo),
                    datetime.fromtimestamp(record.last_episode_at, now.tzinfo),
                    record.alone, record.longest_s, record.most_alerts)

    @staticmethod
    def _change(incident: IncidentState, event: Event, family: str, history: AlertHistory) -> Release | None:
        damped = incident.damped
        assert damped is not None
        held = damped.family or ""
        record = history.families.get(held)
        firing = event.kind is EventKind.alert and event.status is Status.firing
        if record is not None and firing and event.severity.rank > record.severity.rank:
            return Release(Change.severity, event.severity.value, held)
        # (``alert_count`` does not count this event yet: it is the alert events before it)
        if firing and damped.most_alerts > 0 and incident.alert_count + 1 > damped.most_alerts:
            return Release(Change.alerts, str(incident.alert_count + 1), held)
        node, _, template = family.partition("|")
        held_node, _, held_template = held.partition("|")
        if node != held_node:
            return Release(Change.service, node.removeprefix("host:"), held)
        if template != held_template:
            return Release(Change.event, f"{event.kind.value} {event.title[:200]!r}", held)
        return None
