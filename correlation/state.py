"""The correlator's working state: open incidents and known signals, as plain data.

The store is the source of truth; for each batch the caller loads the slice of
state the batch can touch and saves back what the correlator marked dirty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from triage.ingest.event import Severity, Status


@dataclass
class IncidentState:
    id: str
    scope: str
    title: str
    opened_at: datetime
    last_event_at: datetime
    severity: Severity
    status: str = "open"                  # "open" | "resolved"
    resolved_at: datetime | None = None
    services: set[str] = field(default_factory=set)
    firing: set[str] = field(default_factory=set)   # dedup keys of alerts still firing
    event_count: int = 0
    alert_count: int = 0
    suppressed_count: int = 0
    last_notified_at: datetime | None = None
    dirty: bool = False

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass
class SignalState:
    """One distinct signal (an alert fingerprint, or an exact log/span text)."""

    key: str
    incident_id: str
    status: Status
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    dirty: bool = False


@dataclass
class CorrelationState:
    incidents: dict[str, IncidentState] = field(default_factory=dict)
    signals: dict[str, SignalState] = field(default_factory=dict)
    _open_by_scope: dict[str, str] = field(default_factory=dict, repr=False)

    def add_incident(self, incident: IncidentState) -> None:
        self.incidents[incident.id] = incident
        if incident.is_open:
            current = self.open_incident_for(incident.scope)
            if current is None or current.opened_at <= incident.opened_at:
                self._open_by_scope[incident.scope] = incident.id

    def open_incident_for(self, scope: str) -> IncidentState | None:
        """The most recent open incident of a scope: the one new events may join."""
        incident = self.incidents.get(self._open_by_scope.get(scope, ""))
        return incident if incident is not None and incident.is_open else None

    def dirty_incidents(self) -> list[IncidentState]:
        return [i for i in self.incidents.values() if i.dirty]

    def dirty_signals(self) -> list[SignalState]:
        return [s for s in self.signals.values() if s.dirty]

    def clear_dirty(self) -> None:
        for inc in self.incidents.values():
            inc.dirty = False
        for sig in self.signals.values():
            sig.dirty = False
