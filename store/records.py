"""What the store hands back: plain, read-only records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from triage.correlation.decision import Action
from triage.correlation.evidence import Evidence, Rule
from triage.correlation.state import IncidentKind, IncidentStatus
from triage.domain.event import Event


class IncidentConflict(ValueError):
    """A merge or split that cannot be done as asked (it says why)."""


@dataclass(frozen=True)
class Membership:
    event_id: str
    incident_id: str
    action: Action
    rule: Rule | str          # the text of a rule this version does not know (a newer one wrote it)
    evidence: Evidence        # read back from the row's JSON (``evidence_from_json``)
    parameters_version: int
    notify: bool
    decided_at: datetime


@dataclass(frozen=True)
class StoredEvent:
    event: Event
    received_at: datetime
    membership: Membership | None


@dataclass(frozen=True)
class IncidentRecord:
    id: str
    scope: str
    title: str
    status: IncidentStatus
    severity: str
    opened_at: datetime
    last_event_at: datetime
    resolved_at: datetime | None
    last_notified_at: datetime | None
    event_count: int
    alert_count: int
    suppressed_count: int
    services: list[str]
    firing_alerts: int
    kind: IncidentKind = IncidentKind.incident   # had a firing alert | noise: pages nobody
    transient: bool = False     # resolved before its first page was due (auto-pause)
    merged_into: str | None = None   # status "merged": a responder merged it into that incident


@dataclass(frozen=True)
class IncidentQuery:
    status: str | None = None
    service: str | None = None
    since: datetime | None = None   # active at or after
    until: datetime | None = None   # opened at or before
    kind: str | None = None         # "incident" | "noise"
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class Page:
    items: list[IncidentRecord]
    total: int


@dataclass(frozen=True)
class NoiseBucket:
    events: int = 0
    suppressed: int = 0
    incidents: int = 0       # groups opened by these events that are incidents now
    pages: int = 0
    noise_groups: int = 0    # groups they opened that no alert ever joined: nobody was paged

    @property
    def compression(self) -> float:
        """1 - incidents/events: what an on-call engineer has to look at, against what came
        in. A noise group is recorded, not looked at, so it does not count."""
        return 1.0 - self.incidents / self.events if self.events else 0.0


@dataclass(frozen=True)
class NoiseStats:
    total: NoiseBucket
    by_source: dict[str, NoiseBucket] = field(default_factory=dict)
    by_service: dict[str, NoiseBucket] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    received: int        # events handed to the store
    stored: int          # new events written (the rest were already stored)
    suppressed: int
    attached: int
    opened: int          # groups opened: incidents and noise groups
    notified: int
    incidents_opened: int = 0      # incidents opened, and noise groups an alert made incidents
    noise_groups_opened: int = 0
    pages_held: int = 0            # incidents opened whose first page auto_pause holds
    pages_transient: int = 0       # incidents that resolved within their pause: never paged
