"""The API's reads: incidents, their events with each decision, noise figures, pages.

``StoreReads`` is what the API's routers depend on (``triage.api.deps``): reads only, so
a router cannot reach the batch's writes. ``SqlReads`` implements it over an engine, and
``SqlStore`` is one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import sqlalchemy as sa

from triage.correlation.state import IncidentKind
from triage.domain.event import AS_STORED, Event, EventKind
from triage.models.recommender import IncidentProfile
from triage.store import schema as t
from triage.store.engine import chunks, in_window
from triage.store.records import IncidentQuery, IncidentRecord, NoiseBucket, NoiseStats, Page, StoredEvent
from triage.store.rows import incident_record, membership_columns, stored_event
from triage.store.views import Bucket, IncidentPages, NoiseSeries, incident_pages, noise_series


class StoreReads(Protocol):
    """What the API reads from the store."""

    def list_incidents(self, query: IncidentQuery) -> Page: ...

    def get_incident(self, incident_id: str) -> IncidentRecord | None: ...

    def incident_events(self, incident_id: str, *, limit: int = 1000, offset: int = 0) -> list[StoredEvent]: ...

    def get_event(self, event_id: str) -> StoredEvent | None: ...

    def noise_stats(self, since: datetime | None = None, until: datetime | None = None) -> NoiseStats: ...

    def noise_series(self, bucket: Bucket, since: datetime | None = None,
                     until: datetime | None = None) -> NoiseSeries: ...

    def incident_pages(self, incident_id: str) -> IncidentPages | None: ...


class SqlReads:
    """``StoreReads`` over ``engine``, and the reads beside it that services, tests and
    ``triage eval`` use (counts, all memberships, the recommender's profiles)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def count_events(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(t.events)) or 0)

    def list_incidents(self, query: IncidentQuery) -> Page:
        cond: list[sa.ColumnElement[bool]] = []
        if query.status:
            cond.append(t.incidents.c.status == query.status)
        if query.kind:
            cond.append(t.incidents.c.kind == query.kind)
        if query.service:
            cond.append(t.incidents.c.id.in_(
                sa.select(t.incident_services.c.incident_id).where(t.incident_services.c.service == query.service)))
        if query.since:
            cond.append(t.incidents.c.last_event_at >= query.since)
        if query.until:
            cond.append(t.incidents.c.opened_at <= query.until)
        where = sa.and_(sa.true(), *cond)
        with self.engine.connect() as conn:
            total = conn.scalar(sa.select(sa.func.count()).select_from(t.incidents).where(where)) or 0
            rows = conn.execute(sa.select(t.incidents).where(where)
                                .order_by(t.incidents.c.opened_at.desc(), t.incidents.c.id)
                                .limit(query.limit).offset(query.offset))
            return Page(items=[incident_record(r) for r in rows], total=int(total))

    def incident_profiles(self, ids: Iterable[str]) -> list[IncidentProfile]:
        """What the recommender compares incidents by: template centroid, services, title."""
        cols = (t.incidents.c.id, t.incidents.c.title, t.incidents.c.services, t.incidents.c.centroid_f32)
        out = []
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(ids))):
                for r in conn.execute(sa.select(*cols).where(t.incidents.c.id.in_(chunk))):
                    vector = None if r.centroid_f32 is None else np.frombuffer(r.centroid_f32, dtype="<f4")
                    out.append(IncidentProfile(r.id, vector, tuple(r.services), r.title))
        return out

    def get_incident(self, incident_id: str) -> IncidentRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).first()
            return incident_record(row) if row else None

    def incident_events(self, incident_id: str, *, limit: int = 1000, offset: int = 0) -> list[StoredEvent]:
        j = t.events.join(t.memberships, t.memberships.c.event_id == t.events.c.id)
        stmt = (sa.select(t.events, *membership_columns()).select_from(j)
                .where(t.memberships.c.incident_id == incident_id)
                .order_by(t.events.c.occurred_at, t.events.c.id).limit(limit).offset(offset))
        with self.engine.connect() as conn:
            return [stored_event(r) for r in conn.execute(stmt)]

    def platform_alerts(self, since: datetime, until: datetime, *, limit: int = 5000) -> list[Event]:
        """The alerts with no service (host and cluster alerts) that occurred in
        [``since``, ``until``], oldest first: what else the platform showed around an
        incident (``models.triage_context.platform_signals``)."""
        e = t.events.c
        stmt = (sa.select(e.document).where(e.kind == EventKind.alert.value, e.service.is_(None),
                                            *in_window(e.occurred_at, since, until))
                .order_by(e.occurred_at, e.id).limit(limit))
        with self.engine.connect() as conn:
            return [Event.model_validate(r.document, context=AS_STORED) for r in conn.execute(stmt)]

    def get_event(self, event_id: str) -> StoredEvent | None:
        j = t.events.outerjoin(t.memberships, t.memberships.c.event_id == t.events.c.id)
        stmt = sa.select(t.events, *membership_columns()).select_from(j).where(t.events.c.id == event_id)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
            return stored_event(row) if row else None

    def all_memberships(self) -> dict[str, str]:
        """event id -> incident id, for comparing runs (tests, eval)."""
        with self.engine.connect() as conn:
            return {r.event_id: r.incident_id for r in conn.execute(
                sa.select(t.memberships.c.event_id, t.memberships.c.incident_id))}

    def noise_stats(self, since: datetime | None = None, until: datetime | None = None) -> NoiseStats:
        e, m, i = t.events, t.memberships, t.incidents
        cond = in_window(e.c.occurred_at, since, until)

        def bucketed(key: sa.ColumnElement[Any] | None) -> Iterable[sa.Row[Any]]:
            cols: list[Any] = [
                sa.func.count().label("events"),
                sa.func.sum(sa.case((m.c.action == "suppressed", 1), else_=0)).label("suppressed"),
                # A group counts by what it is now: a noise group an alert joined later is
                # an incident, opened by the log or span that opened the group.
                sa.func.sum(sa.case((i.c.kind == IncidentKind.incident.value, 1), else_=0)).label("incidents"),
                sa.func.sum(sa.case((i.c.kind == IncidentKind.noise.value, 1), else_=0)).label("noise_groups"),
                sa.func.sum(sa.case((m.c.notify, 1), else_=0)).label("pages"),
            ]
            opened_group = sa.and_(i.c.id == m.c.incident_id, m.c.action == "opened")
            stmt = sa.select(*([key.label("key")] if key is not None else []), *cols).select_from(
                e.join(m, m.c.event_id == e.c.id).outerjoin(i, opened_group)).where(sa.and_(sa.true(), *cond))
            if key is not None:
                stmt = stmt.group_by(key)
            return conn.execute(stmt).all()

        def bucket(r: sa.Row[Any]) -> NoiseBucket:
            return NoiseBucket(events=int(r.events or 0), suppressed=int(r.suppressed or 0),
                               incidents=int(r.incidents or 0), pages=int(r.pages or 0),
                               noise_groups=int(r.noise_groups or 0))

        with self.engine.connect() as conn:
            total = bucket(list(bucketed(None))[0])
            by_source = {r.key: bucket(r) for r in bucketed(e.c.source)}
            by_service = {(r.key or "(none)"): bucket(r) for r in bucketed(e.c.service)}
        return NoiseStats(total=total, by_source=by_source, by_service=by_service)

    def noise_series(self, bucket: Bucket, since: datetime | None = None,
                     until: datetime | None = None) -> NoiseSeries:
        """``noise_stats``' figures per hour or day (``triage.store.views``)."""
        return noise_series(self.engine, bucket, since, until)

    def incident_pages(self, incident_id: str) -> IncidentPages | None:
        """An incident's pages: due, held, sent (``triage.store.views``)."""
        return incident_pages(self.engine, incident_id)
