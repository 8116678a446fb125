"""Reads for the web view: an incident's pages, and the noise figures per hour or day.

Both run the same SQL on SQLite and PostgreSQL, except the one expression that names an
instant's hour or day (``_bucket_key``), which each dialect spells its own way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

import sqlalchemy as sa

from triage.correlation.state import IncidentKind
from triage.store import schema as t
from triage.store.schema import outbox
from triage.store.engine import in_window
from triage.store.records import NoiseBucket


class PageState(str, Enum):
    """Where an incident's paging stands."""

    paged = "paged"              # it made a page due (delivered or not: see the deliveries)
    held = "held"                # its first page waits for auto_pause (page_due_at)
    transient = "transient"      # its alerts resolved inside the pause: nobody was paged
    unpaged = "unpaged"          # an incident that never made a page due (merged away before, say)
    noise = "noise"              # a noise group: pages nobody until an alert joins it


@dataclass(frozen=True)
class PageDue:
    """An event whose decision made a page (or a page update) due."""

    event_id: str
    occurred_at: datetime
    decided_at: datetime
    title: str
    first: bool                  # the incident's first page; the others are updates and repeats


@dataclass(frozen=True)
class Delivery:
    """One outbox row: a page owed to one target."""

    id: str
    target: str
    action: str                  # trigger | resolve
    status: str                  # pending | sent | failed | skipped
    attempts: int
    created_at: datetime         # when it was owed
    next_attempt_at: datetime    # pending: when it is (next) tried
    sent_at: datetime | None
    reason: str | None           # the last error, or why it was skipped
    cause: str                   # the event (or merge) that owed it


@dataclass(frozen=True)
class IncidentPages:
    incident_id: str
    state: PageState
    page_due_at: datetime | None     # held: when the first page is due
    last_paged_at: datetime | None
    due: list[PageDue]
    deliveries: list[Delivery]


def incident_pages(engine: sa.Engine, incident_id: str) -> IncidentPages | None:
    """The pages of one incident: the decisions that made them due, and what each page
    target was sent and when; None for an unknown incident."""
    i, m, e = t.incidents, t.memberships, t.events
    with engine.connect() as conn:
        row = conn.execute(sa.select(i.c.status, i.c.kind, i.c.page_due_at, i.c.last_notified_at, i.c.transient)
                           .where(i.c.id == incident_id)).first()
        if row is None:
            return None
        due_rows = conn.execute(
            sa.select(e.c.id, e.c.occurred_at, e.c.title, m.c.decided_at)
            .select_from(m.join(e, e.c.id == m.c.event_id))
            .where(m.c.incident_id == incident_id, m.c.notify)
            .order_by(e.c.occurred_at, e.c.id)).all()
        rows = conn.execute(sa.select(outbox).where(outbox.c.incident_id == incident_id)
                            .order_by(outbox.c.created_at, outbox.c.id)).all()
    due = [PageDue(r.id, r.occurred_at, r.decided_at, r.title, n == 0) for n, r in enumerate(due_rows)]
    deliveries = [Delivery(id=r.id, target=r.target, action=r.action, status=r.status, attempts=r.attempts,
                           created_at=r.created_at, next_attempt_at=r.next_attempt_at, sent_at=r.sent_at,
                           reason=r.last_error, cause=_cause(r.id, r.target, incident_id, r.action))
                  for r in rows]
    state = _state(row, bool(due))
    return IncidentPages(incident_id=incident_id, state=state,
                         page_due_at=row.page_due_at if state is PageState.held else None,
                         last_paged_at=row.last_notified_at, due=due, deliveries=deliveries)


def _state(row: Any, any_due: bool) -> PageState:
    if row.kind == IncidentKind.noise:
        return PageState.noise
    if row.last_notified_at is not None or any_due:
        return PageState.paged
    if row.transient:
        return PageState.transient
    if row.page_due_at is not None and row.status == "open":
        return PageState.held
    return PageState.unpaged


def _cause(row_id: str, target: str, incident_id: str, action: str) -> str:
    """Outbox ids are ``target:incident:action:cause`` (``triage.paging.outbox.enqueue``)."""
    return row_id.removeprefix(f"{target}:{incident_id}:{action}:")


class Bucket(str, Enum):
    hour = "hour"
    day = "day"

    @property
    def width(self) -> timedelta:
        return timedelta(hours=1) if self is Bucket.hour else timedelta(days=1)

    def floor(self, at: datetime) -> datetime:
        at = at.astimezone(timezone.utc)
        at = at.replace(minute=0, second=0, microsecond=0)
        return at.replace(hour=0) if self is Bucket.day else at


@dataclass(frozen=True)
class SeriesPoint:
    start: datetime              # the bucket's first instant (UTC)
    counts: NoiseBucket


@dataclass(frozen=True)
class NoiseSeries:
    bucket: Bucket
    since: datetime | None       # the first bucket's start; None when nothing is stored
    until: datetime | None       # the last bucket's end
    points: list[SeriesPoint]


class TooManyBuckets(ValueError):
    pass


def _bucket_key(dialect: str, column: sa.ColumnElement[Any], bucket: Bucket) -> sa.ColumnElement[str]:
    """The bucket an instant falls in, as text 'YYYY-MM-DD HH' (hour) or 'YYYY-MM-DD' (day),
    in UTC. SQLite keeps instants as UTC text of that shape (``UTCDateTime``), so a prefix
    is the bucket; PostgreSQL formats its timestamptz, converted to UTC first."""
    if dialect == "postgresql":
        pattern = "YYYY-MM-DD HH24" if bucket is Bucket.hour else "YYYY-MM-DD"
        return sa.func.to_char(sa.func.timezone("UTC", column), pattern, type_=sa.String)
    return sa.func.substr(column, 1, 13 if bucket is Bucket.hour else 10, type_=sa.String)


def _parse_key(key: str, bucket: Bucket) -> datetime:
    return datetime.strptime(key, "%Y-%m-%d %H" if bucket is Bucket.hour else "%Y-%m-%d").replace(tzinfo=timezone.utc)


def noise_series(engine: sa.Engine, bucket: Bucket, since: datetime | None = None, until: datetime | None = None,
                 *, max_buckets: int = 2000) -> NoiseSeries:
    """Events in, duplicates suppressed, incidents and noise groups opened and pages, per
    hour or day of the events' own time, counted as ``SqlStore.noise_stats`` counts them
    (so the buckets of a window add up to its totals). Buckets with nothing are there with
    zeros, from the bucket of ``since`` (or the first event) to the one before ``until``
    (or the last event's); more than ``max_buckets`` raise ``TooManyBuckets``."""
    e, m, i = t.events, t.memberships, t.incidents
    cond = in_window(e.c.occurred_at, since, until)
    with engine.connect() as conn:
        if since is None or until is None:
            first, last = conn.execute(sa.select(sa.func.min(e.c.occurred_at), sa.func.max(e.c.occurred_at))
                                       .where(sa.and_(sa.true(), *cond))).one()
            if first is None:
                return NoiseSeries(bucket, None, None, [])
            since = since or first
            until = until or bucket.floor(last) + bucket.width
        start, end = bucket.floor(since), until
        count = 0 if end <= start else -(-(end - start) // bucket.width)
        if count > max_buckets:
            raise TooManyBuckets(f"{count} {bucket.value}s between {start.isoformat()} and {end.isoformat()}; "
                                 f"at most {max_buckets}: pick a shorter window or bucket=day")
        key = _bucket_key(engine.dialect.name, e.c.occurred_at, bucket).label("key")
        opened_group = sa.and_(i.c.id == m.c.incident_id, m.c.action == "opened")
        stmt = (sa.select(
            key, sa.func.count().label("events"),
            sa.func.sum(sa.case((m.c.action == "suppressed", 1), else_=0)).label("suppressed"),
            sa.func.sum(sa.case((i.c.kind == IncidentKind.incident, 1), else_=0)).label("incidents"),
            sa.func.sum(sa.case((i.c.kind == IncidentKind.noise, 1), else_=0)).label("noise_groups"),
            sa.func.sum(sa.case((m.c.notify, 1), else_=0)).label("pages"))
            .select_from(e.join(m, m.c.event_id == e.c.id).outerjoin(i, opened_group))
            .where(sa.and_(sa.true(), *cond)).group_by(key))
        found = {_parse_key(r.key, bucket): NoiseBucket(
            events=int(r.events or 0), suppressed=int(r.suppressed or 0), incidents=int(r.incidents or 0),
            pages=int(r.pages or 0), noise_groups=int(r.noise_groups or 0)) for r in conn.execute(stmt)}
    points = [SeriesPoint(at, found.get(at, NoiseBucket()))
              for at in (start + n * bucket.width for n in range(count))]
    return NoiseSeries(bucket, start, start + count * bucket.width if count else end, points)
