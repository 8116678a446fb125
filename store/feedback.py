"""What responders did, from PagerDuty webhooks: who acknowledged, who resolved, notes.
The training data for responder and remediation suggestions."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from triage.ingest.webhooks import Feedback
from triage.models.recommender import Resolution
from triage.store.schema import JSONType, UTCDateTime, metadata

feedback = sa.Table(
    "feedback", metadata,
    sa.Column("id", sa.String(200), primary_key=True),       # the webhook event's own id
    sa.Column("source", sa.String(50), nullable=False),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("external_incident_id", sa.String(200)),
    sa.Column("incident_id", sa.String(64)),                  # triage's, when the page was ours
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(300)),
    sa.Column("document", JSONType, nullable=False),
    sa.Index("ix_feedback_incident", "incident_id"),
)


class FeedbackStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, *, id: str, source: str, event_type: str, occurred_at: datetime, received_at: datetime,
            document: dict[str, Any], external_incident_id: str | None = None, incident_id: str | None = None,
            actor: str | None = None) -> bool:
        """Idempotent by webhook event id (PagerDuty retries deliveries). True if new."""
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(feedback.c.id).where(feedback.c.id == id)).first()
            if exists:
                return False
            conn.execute(sa.insert(feedback).values(
                id=id, source=source, event_type=event_type, occurred_at=occurred_at, received_at=received_at,
                document=document, external_incident_id=external_incident_id, incident_id=incident_id,
                actor=actor))
        return True

    def add_pagerduty(self, fb: Feedback, received_at: datetime) -> bool:
        """A PagerDuty webhook's feedback; ``incident_key`` is the dedup key triage paged
        with, so it names triage's incident when the page was ours."""
        agent = fb.agent.email or fb.agent.name if fb.agent else None
        return self.add(id=fb.event_id, source="pagerduty", event_type=fb.event_type, occurred_at=fb.occurred_at,
                        received_at=received_at, document=json.loads(json.dumps(dataclasses.asdict(fb), default=str)),
                        external_incident_id=fb.incident_id, incident_id=fb.incident_key, actor=agent)

    def add_resolution(self, incident_id: str, *, responder: str, note: str | None, resolved_at: datetime,
                       received_at: datetime) -> bool:
        """Who resolved an incident and what fixed it, said through triage's own API. The
        same incident, responder time and all, posted twice is stored once."""
        return self.add(id=f"{API_RESOLUTION}:{incident_id}:{resolved_at.isoformat()}", source="api",
                        event_type=API_RESOLUTION, occurred_at=resolved_at, received_at=received_at,
                        document={"responder": responder, "note": note, "resolved_at": resolved_at.isoformat()},
                        incident_id=incident_id, actor=responder)

    def for_incident(self, incident_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(feedback).where(feedback.c.incident_id == incident_id)
                                .order_by(feedback.c.occurred_at))
            return [dict(r._mapping) for r in rows]

    def stamp(self) -> tuple[int, datetime | None]:
        """Changes whenever feedback is added: (rows, newest received_at)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sa.func.count(), sa.func.max(feedback.c.received_at))).one()
        return int(row[0]), row[1]

    def resolutions(self) -> dict[str, Resolution]:
        """Who resolved each triage incident and how, from its feedback: the responder is
        whoever resolved it (else the last to acknowledge it), the remediation its last
        note. PagerDuty's note events name only PagerDuty's incident; they are joined to
        triage's through the other events of that incident."""
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(feedback).order_by(feedback.c.occurred_at, feedback.c.id)))
        ours = {r.external_incident_id: r.incident_id for r in rows if r.external_incident_id and r.incident_id}
        found: dict[str, dict[str, Any]] = {}
        for r in rows:
            incident_id = r.incident_id or ours.get(r.external_incident_id)
            if incident_id is None:
                continue
            seen = found.setdefault(incident_id, {"resolver": None, "acker": None, "note": None, "at": None})
            person = r.actor if _by_a_person(r.document) else None
            if r.event_type in RESOLVING and person:
                seen["resolver"], seen["at"] = person, r.occurred_at
            elif r.event_type == "incident.acknowledged" and person:
                seen["acker"] = person
            note = r.document.get("note") if isinstance(r.document, dict) else None
            if isinstance(note, str) and note.strip():
                seen["note"] = note.strip()
        return {incident_id: Resolution(s["resolver"] or s["acker"], s["note"], s["at"])
                for incident_id, s in found.items() if s["resolver"] or s["acker"] or s["note"]}


# Feedback that says who resolved an incident: PagerDuty's, and triage's own API.
API_RESOLUTION = "triage.resolution"
RESOLVING = frozenset({"incident.resolved", API_RESOLUTION})


def _by_a_person(document: Any) -> bool:
    """PagerDuty names a service or an integration as the agent when an incident resolves
    by itself (triage's own resolve event, say): that is nobody to suggest."""
    agent = document.get("agent") if isinstance(document, dict) else None
    kind = agent.get("type") if isinstance(agent, dict) else None
    return not isinstance(kind, str) or kind.startswith("user")
