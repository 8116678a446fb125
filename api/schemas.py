"""Response bodies: the public shape of what the store holds."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from triage.api.params import Text, Time
from triage.api.triage_schemas import TriagePublic
from triage.correlation.explain import explain
from triage.domain.event import Event
from triage.store import IncidentRecord, Membership, NoiseBucket, NoiseStats, StoredEvent
from triage.store.family_fits import FamilyFit, FamilyStats


class IncidentPublic(BaseModel):
    id: str
    title: str
    status: str
    severity: str
    scope: str
    services: list[str]
    opened_at: datetime
    last_event_at: datetime
    resolved_at: datetime | None
    event_count: int
    alert_count: int
    suppressed_count: int
    firing_alerts: int
    kind: Literal["incident", "noise"] = Field(
        description="incident: a firing alert is or was in it, and it pages; noise: logs, spans and "
                    "resolves that no alert joined, recorded but paging nobody (until an alert joins it)")
    transient: bool = Field(description="its alerts resolved before its first page was due (auto-pause): "
                                        "nobody was paged")
    last_paged_at: datetime | None = Field(
        description="when it last made a page or page update due; null if it never paged")
    merged_into: str | None = Field(None, description="status 'merged': the incident it was merged into")

    @classmethod
    def of(cls, record: IncidentRecord) -> "IncidentPublic":
        return cls.model_validate({**asdict(record), "last_paged_at": record.last_notified_at})


class IncidentPage(BaseModel):
    items: list[IncidentPublic]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class MembershipPublic(BaseModel):
    incident_id: str
    action: str
    rule: str
    explanation: str
    evidence: dict[str, Any]
    parameters_version: int
    notify: bool
    decided_at: datetime

    @classmethod
    def of(cls, m: Membership) -> "MembershipPublic":
        return cls(incident_id=m.incident_id, action=m.action, rule=m.rule,
                   explanation=explain(m.rule, m.evidence), evidence=m.evidence.as_json(),
                   parameters_version=m.parameters_version, notify=m.notify, decided_at=m.decided_at)


class EventPublic(BaseModel):
    event: Event
    received_at: datetime
    membership: MembershipPublic | None

    @classmethod
    def of(cls, s: StoredEvent) -> "EventPublic":
        return cls(event=s.event, received_at=s.received_at,
                   membership=MembershipPublic.of(s.membership) if s.membership else None)


class SimilarIncidentPublic(BaseModel):
    incident_id: str
    title: str
    similarity: float = Field(description="cosine of the two incidents' template centroids")
    services: list[str]
    responder: str | None
    remediation: str | None
    resolved_at: datetime | None


class ResponderSuggestion(BaseModel):
    responder: str
    score: float = Field(description="summed similarity of the past incidents this responder resolved")


class RemediationSuggestion(BaseModel):
    remediation: str
    from_incident: str
    similarity: float


class IncidentDetail(IncidentPublic):
    events: list[EventPublic]
    events_total: int
    similar_past_incidents: list[SimilarIncidentPublic]
    suggested_responders: list[ResponderSuggestion]
    suggested_remediations: list[RemediationSuggestion]
    triage: TriagePublic | None = Field(None, description="probable cause, recent changes, owner team, responders, "
                                                          "remediations and similar incidents, each with its evidence")


class ResolutionIn(BaseModel):
    """Who resolved an incident and how: what the recommender learns from."""

    model_config = ConfigDict(extra="forbid")

    responder: Text = Field(min_length=1, max_length=300)
    note: Text | None = Field(None, max_length=10_000, description="what fixed it")
    resolved_at: Time | None = Field(None, description="when (RFC 3339); default now")


class MergeIn(BaseModel):
    """Incidents a responder says are one problem: they move into the incident named in the path."""

    model_config = ConfigDict(extra="forbid")

    incidents: list[Text] = Field(min_length=1, max_length=100, description="ids of the incidents to merge in")
    author: Text = Field(min_length=1, max_length=200)
    reason: Text = Field("", max_length=2000)


class SplitIn(BaseModel):
    """Events a responder says are another problem: they leave for a new incident."""

    model_config = ConfigDict(extra="forbid")

    events: list[Text] = Field(min_length=1, max_length=10_000, description="ids of the events to split off")
    author: Text = Field(min_length=1, max_length=200)
    reason: Text = Field("", max_length=2000)


class ResolutionAccepted(BaseModel):
    incident_id: str
    responder: str
    note: str | None


class NoiseBucketPublic(BaseModel):
    events: int
    duplicates_suppressed: int
    incidents: int = Field(description="incidents these events opened (noise groups an alert joined included)")
    noise_groups: int = Field(description="groups they opened that no alert joined: recorded, paging nobody")
    pages: int
    compression: float = Field(description="1 - incidents/events")

    @classmethod
    def of(cls, b: NoiseBucket) -> "NoiseBucketPublic":
        return cls(events=b.events, duplicates_suppressed=b.suppressed, incidents=b.incidents,
                   noise_groups=b.noise_groups, pages=b.pages, compression=round(b.compression, 4))


class NoiseStatsPublic(BaseModel):
    since: datetime | None
    until: datetime | None
    total: NoiseBucketPublic
    by_source: dict[str, NoiseBucketPublic]
    by_service: dict[str, NoiseBucketPublic]

    @classmethod
    def of(cls, s: NoiseStats, since: datetime | None, until: datetime | None) -> "NoiseStatsPublic":
        return cls(since=since, until=until, total=NoiseBucketPublic.of(s.total),
                   by_source={k: NoiseBucketPublic.of(v) for k, v in sorted(s.by_source.items())},
                   by_service={k: NoiseBucketPublic.of(v) for k, v in sorted(s.by_service.items())})


class FamilyPublic(BaseModel):
    id: int
    size: int = Field(description="templates in the family")
    examples: list[str] = Field(description="up to five of its template texts, most events first")
    events: int = Field(description="alert events decided on its templates (duplicates and resolves included)")
    incidents: int = Field(description="incidents those events are in")
    pages: int = Field(description="pages those events caused")
    last_seen: datetime | None = Field(description="when triage last decided one of its alerts")

    @classmethod
    def of(cls, s: FamilyStats) -> "FamilyPublic":
        return cls(id=s.family, size=s.size, examples=[text for text, _ in s.templates[:5]], events=s.events,
                   incidents=s.incidents, pages=s.pages, last_seen=s.last_seen)


class FamilyTemplate(BaseModel):
    text: str
    events: int


class FamilyDetail(FamilyPublic):
    version: int
    fitted_at: datetime
    templates: list[FamilyTemplate]

    @classmethod
    def of_fit(cls, s: FamilyStats, fit: FamilyFit) -> "FamilyDetail":
        return cls(**FamilyPublic.of(s).model_dump(), version=fit.version, fitted_at=fit.fitted_at,
                   templates=[FamilyTemplate(text=text, events=n) for text, n in s.templates])


class FamilyPage(BaseModel):
    version: int | None = Field(description="the fit these families come from; null before the first fit")
    fitted_at: datetime | None
    templates_fitted: int = Field(description="alert templates the fit clustered")
    total: int
    limit: int
    offset: int
    next_offset: int | None
    items: list[FamilyPublic]


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
