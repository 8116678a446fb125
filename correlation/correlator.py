"""The baseline correlator: exact-duplicate suppression, then grouping by scope in a window.

Rules, in the order they are tried (each Decision names the one that fired):

1. ``duplicate``: the signal (alert fingerprint, or exact log/span text) is already
   known and still live: an alert still firing, a log repeated within ``dedup_window``.
2. ``alert_resolved``: a resolve for a firing alert; its incident resolves when the
   last of its alerts does.
3. ``same_scope_within_window``: the scope (service, else host) has an open incident
   that saw an event within ``window`` and is younger than ``max_incident_age``.
4. ``new_incident``: otherwise.
"""

from __future__ import annotations

from datetime import datetime

from triage.correlation.decision import Action, Decision
from triage.correlation.keys import dedup_key, incident_id_for, scope_of
from triage.correlation.state import CorrelationState, IncidentState, SignalState
from triage.ingest.event import Event, EventKind, Status
from triage.models.parameters import CorrelationParameters


def _seconds(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds(), 3)


def _gap(now: datetime, incident: IncidentState) -> float:
    """Distance in time from an incident's span of events; a late event (from before the
    incident opened) is as far as it is early, not "0 s after"."""
    if now < incident.opened_at:
        return _seconds(incident.opened_at, now)
    return max(0.0, _seconds(now, incident.last_event_at))


class Correlator:
    def __init__(
        self,
        parameters: CorrelationParameters | None = None,
        *,
        parameters_version: int = 0,
        state: CorrelationState | None = None,
    ) -> None:
        self.parameters = parameters or CorrelationParameters()
        self.parameters_version = parameters_version
        self.state = state if state is not None else CorrelationState()

    def process_batch(self, events: list[Event]) -> list[Decision]:
        """Decide a batch in event-time order, each at its own ``occurred_at``."""
        ordered = sorted(events, key=lambda e: (e.occurred_at, e.id))
        return [self.process(e, now=e.occurred_at) for e in ordered]

    def process(self, event: Event, now: datetime) -> Decision:
        p = self.parameters
        key = dedup_key(event)
        signal = self.state.signals.get(key)
        incident = self.state.incidents.get(signal.incident_id) if signal else None

        if signal is not None and incident is not None:
            if event.kind is EventKind.alert:
                if event.status is Status.resolved and signal.status is Status.firing:
                    return self._resolve(event, now, signal, incident)
                if event.status is signal.status and (incident.is_open or signal.status is Status.resolved):
                    return self._duplicate(event, now, signal, incident, reason="same fingerprint, same status")
            elif _seconds(now, signal.last_seen) <= p.dedup_window and incident.is_open:
                return self._duplicate(event, now, signal, incident, reason="identical text")

        scope = scope_of(event)
        open_incident = self.state.open_incident_for(scope)
        if open_incident is not None:
            gap = _gap(now, open_incident)
            age = _seconds(now, open_incident.opened_at)
            if gap <= p.window and age <= p.max_incident_age:
                evidence = {"scope": scope, "gap_s": gap, "window_s": p.window,
                            "incident_age_s": age, "max_incident_age_s": p.max_incident_age}
                return self._join(event, now, key, open_incident, Action.attached,
                                  "same_scope_within_window", evidence)
        incident = IncidentState(
            id=incident_id_for(event.id), scope=scope, title=event.title,
            opened_at=now, last_event_at=now, severity=event.severity,
        )
        # A resolve for an alert never seen firing is history, not a problem: record it, page nobody.
        if event.kind is EventKind.alert and event.status is Status.resolved:
            incident.status, incident.resolved_at = "resolved", now
        self.state.add_incident(incident)
        evidence = {"scope": scope}
        if open_incident is not None:
            evidence.update(previous_incident=open_incident.id, gap_s=_gap(now, open_incident),
                            window_s=p.window)
        return self._join(event, now, key, incident, Action.opened, "new_incident", evidence)

    # -- effects -------------------------------------------------------------------

    def _touch(self, event: Event, now: datetime, incident: IncidentState) -> None:
        incident.event_count += 1
        incident.last_event_at = max(incident.last_event_at, now)
        if event.service:
            incident.services.add(event.service)
        if event.severity.rank > incident.severity.rank:
            incident.severity = event.severity
        incident.dirty = True

    def _due(self, incident: IncidentState, now: datetime, *, new_alert: bool) -> bool:
        """Alertmanager's timers: the first page, an update after group_interval, a repeat."""
        if not incident.is_open:
            return False
        last = incident.last_notified_at
        if last is None:
            due = True
        else:
            since = _seconds(now, last)
            due = since >= (self.parameters.group_interval if new_alert else self.parameters.repeat_interval)
        if due:
            incident.last_notified_at = now
        return due

    def _join(self, event: Event, now: datetime, key: str, incident: IncidentState,
              action: Action, rule: str, evidence: dict[str, object]) -> Decision:
        self._touch(event, now, incident)
        is_alert = event.kind is EventKind.alert
        if is_alert:
            incident.alert_count += 1
            if event.status is Status.firing:
                incident.firing.add(key)
        self.state.signals[key] = SignalState(key=key, incident_id=incident.id, status=event.status,
                                              first_seen=now, last_seen=now, dirty=True)
        notify = is_alert and event.status is Status.firing and self._due(incident, now, new_alert=True)
        return self._decide(event, action, incident, rule, evidence, notify)

    def _duplicate(self, event: Event, now: datetime, signal: SignalState,
                   incident: IncidentState, reason: str) -> Decision:
        self._touch(event, now, incident)
        incident.suppressed_count += 1
        evidence = {"dedup_key": signal.key, "reason": reason, "first_seen": signal.first_seen.isoformat(),
                    "seen_before": signal.count, "since_last_s": _seconds(now, signal.last_seen)}
        signal.count += 1
        signal.last_seen = max(signal.last_seen, now)
        signal.dirty = True
        notify = event.kind is EventKind.alert and self._due(incident, now, new_alert=False)
        return self._decide(event, Action.suppressed, incident, "duplicate", evidence, notify)

    def _resolve(self, event: Event, now: datetime, signal: SignalState, incident: IncidentState) -> Decision:
        self._touch(event, now, incident)
        incident.alert_count += 1
        signal.status, signal.last_seen, signal.dirty = Status.resolved, now, True
        signal.count += 1
        incident.firing.discard(signal.key)
        evidence: dict[str, object] = {"dedup_key": signal.key, "still_firing": len(incident.firing)}
        if not incident.firing and incident.is_open:
            incident.status, incident.resolved_at = "resolved", now
            evidence["incident_resolved"] = True
        return self._decide(event, Action.attached, incident, "alert_resolved", evidence, notify=False)

    def _decide(self, event: Event, action: Action, incident: IncidentState, rule: str,
                evidence: dict[str, object], notify: bool) -> Decision:
        return Decision(event_id=event.id, action=action, incident_id=incident.id, rule=rule,
                        evidence=evidence, parameters_version=self.parameters_version, notify=notify)
