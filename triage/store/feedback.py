"""What responders did, from PagerDuty webhooks: who acknowledged, who resolved, notes.
The training data for responder and remediation suggestions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

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

    def for_incident(self, incident_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(feedback).where(feedback.c.incident_id == incident_id)
                                .order_by(feedback.c.occurred_at))
            return [dict(r._mapping) for r in rows]
