"""The triage context of an incident as the API shows it (``GET /incidents/{id}``'s
``triage``): what broke first, what changed, who owns it, who should respond, what fixed
it last time, which past incidents were like it. Each item carries its evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from triage.models.triage_context import TriageContext


class CauseCandidatePublic(BaseModel):
    component: str
    type: str = Field(description="service, datastore, host, zone or cluster")
    confidence: float = Field(description="share of the ranked candidates' weight")
    score: float
    first_seen: datetime
    evidence: list[str]


class ChangeFields(BaseModel):
    """What every view of a recorded change shows (``GET /changes`` adds the rest)."""

    id: str
    service: str | None
    kind: str
    occurred_at: datetime
    summary: str
    version: str | None
    who: str | None
    link: str | None


class RecentChangePublic(ChangeFields):
    distance: int = Field(description="graph hops from the incident's components (0: on one of them)")
    evidence: str


class ResponderPublic(BaseModel):
    person: str
    confidence: float
    evidence: list[str]


class RemediationPublic(BaseModel):
    text: str
    source: str = Field(description="past_resolution, runbook or annotation")
    url: str | None
    evidence: str
    from_incident: str | None


class SimilarPublic(BaseModel):
    incident_id: str
    score: float
    title: str
    probable_cause: str | None
    responder: str | None
    resolution_note: str | None
    evidence: list[str]


class TriagePublic(BaseModel):
    probable_cause: list[CauseCandidatePublic]
    owner_team: str | None
    owner_team_evidence: str | None
    recent_changes: list[RecentChangePublic]
    responders: list[ResponderPublic]
    remediations: list[RemediationPublic]
    similar_incidents: list[SimilarPublic]

    @classmethod
    def of(cls, context: TriageContext | None) -> "TriagePublic | None":
        if context is None:
            return None
        document: dict[str, Any] = context.document()
        return cls.model_validate(document)
