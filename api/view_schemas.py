"""Response bodies of the reads the web view needs: an incident's pages, noise over time."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from triage.api.schemas import NoiseBucketPublic
from triage.store.views import IncidentPages, NoiseSeries, PageState


class PageDuePublic(BaseModel):
    event_id: str = Field(description="the event whose decision made the page due")
    occurred_at: datetime = Field(description="that event's time: when the page fell due, in event time")
    decided_at: datetime = Field(description="when triage decided it")
    title: str
    first: bool = Field(description="the incident's first page; the others are updates (group_interval) and "
                                    "repeats (repeat_interval)")


class DeliveryPublic(BaseModel):
    id: str
    target: str = Field(description="where the page goes: pagerduty, webhook or kafka")
    action: Literal["trigger", "resolve"] | str
    status: Literal["pending", "sent", "failed", "skipped"] | str = Field(
        description="pending: owed, tried at next_attempt_at; sent; failed: the target refused it (reason); "
                    "skipped: not to be sent (reason)")
    attempts: int
    owed_at: datetime
    next_attempt_at: datetime | None = Field(description="pending: when it is tried next")
    sent_at: datetime | None
    reason: str | None = Field(description="the last error, or why it was skipped")
    cause: str = Field(description="the event that owed it, or the merge (merged-into-…, merged-from-…)")


class IncidentPagesPublic(BaseModel):
    incident_id: str
    state: PageState = Field(description="paged; held: the first page waits for the auto_pause parameter "
                                         "until page_due_at; transient: its alerts resolved inside the pause, "
                                         "nobody was paged; unpaged; noise: a noise group pages nobody")
    page_due_at: datetime | None = Field(description="held: when the first page falls due (event time)")
    last_paged_at: datetime | None
    due: list[PageDuePublic] = Field(description="the decisions that made a page or page update due, in event time")
    deliveries: list[DeliveryPublic] = Field(
        description="what the page targets were sent (the outbox); empty when no page target is configured")

    @classmethod
    def of(cls, p: IncidentPages) -> "IncidentPagesPublic":
        return cls(incident_id=p.incident_id, state=p.state, page_due_at=p.page_due_at,
                   last_paged_at=p.last_paged_at,
                   due=[PageDuePublic(event_id=d.event_id, occurred_at=d.occurred_at, decided_at=d.decided_at,
                                      title=d.title, first=d.first) for d in p.due],
                   deliveries=[DeliveryPublic(
                       id=d.id, target=d.target, action=d.action, status=d.status, attempts=d.attempts,
                       owed_at=d.created_at, next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
                       sent_at=d.sent_at, reason=d.reason, cause=d.cause) for d in p.deliveries])


class NoisePointPublic(NoiseBucketPublic):
    start: datetime = Field(description="the bucket's first instant (UTC); it lasts one hour or day")


class NoiseSeriesPublic(BaseModel):
    bucket: Literal["hour", "day"]
    since: datetime | None = Field(description="the first bucket's start; null when nothing is stored")
    until: datetime | None = Field(description="the last bucket's end")
    points: list[NoisePointPublic]

    @classmethod
    def of(cls, s: NoiseSeries) -> "NoiseSeriesPublic":
        return cls(bucket=s.bucket.value, since=s.since, until=s.until,
                   points=[NoisePointPublic(start=p.start, **NoiseBucketPublic.of(p.counts).model_dump())
                           for p in s.points])
