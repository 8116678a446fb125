"""Held pages (PagerDuty-style auto-pause): the first page of an incident waits until its
``page_due_at``; if all its alerts resolve first it is transient and pages nobody.

The correlator decides in event time, so when no further event of an incident arrives
nothing there ever finds its page due. ``release_held_pages`` is the ticker's half: on
wall-clock time it finds the incidents still holding their first page past its due
time, marks them notified and enqueues their trigger in the outbox, in ONE transaction
that first takes the lock of their scopes, the same lock a batch takes
(``SqlStore.lock_scopes``). So of several replicas' tickers one enqueues the page, and
a batch deciding the same scope either ran before (and then already paged or resolved
the incident, which the ticker sees) or runs after (and sees it notified).

*Wall clock, measured like event time.* An alert received late (Kafka lag, a replay of
last week) must still get its whole pause to resolve in. The ticker therefore reads its
wall-clock ``now`` on the incident's own clock: ``now - lag``, where ``lag`` is how much
later than it occurred the alert that started the pause was received (never below 0).
The page is due when that is at or past ``page_due_at``; for alerts received live it is
``now`` itself. The same instant is stored as ``last_notified_at``, so the correlator's
``group_interval`` and ``repeat_interval`` keep counting in event time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from triage.correlation.state import IncidentKind, IncidentStatus
from triage.store import schema as t
from triage.paging.outbox import Owed, enqueue
from triage.store.sql import SqlStore

__all__ = ["HeldPage", "release_held_pages"]


@dataclass(frozen=True)
class HeldPage:
    incident_id: str
    cause_event_id: str | None    # the alert that started the pause
    notified_at: datetime         # on the incident's clock (see the module's docstring)


def _held(now: datetime) -> sa.ColumnElement[bool]:
    i = t.incidents
    # These terms match the partial index ix_incidents_held (status, page_due_at).
    return sa.and_(i.c.last_notified_at.is_(None), i.c.page_due_at <= now, i.c.status == IncidentStatus.open.value,
                   i.c.kind == IncidentKind.incident.value)


def release_held_pages(store: SqlStore, targets: Sequence[str], now: datetime, *,
                       limit: int = 200) -> list[HeldPage]:
    """Send the first page of every incident whose auto-pause is over at ``now`` and that is
    still open and unpaged; returns them. Idempotent: a second call finds nothing more."""
    i = t.incidents
    with store.engine.connect() as conn:
        scopes = sorted(conn.scalars(sa.select(i.c.scope).where(_held(now)).distinct()))
    if not scopes:
        return []
    released: list[HeldPage] = []
    with store.engine.begin() as conn:
        store.lock_scopes(conn, scopes)
        # Under the lock: what a batch committed meanwhile (a resolve, a page) is seen here.
        rows = conn.execute(sa.select(i.c.id, i.c.page_due_at).where(_held(now), i.c.scope.in_(scopes))
                            .order_by(i.c.page_due_at, i.c.id).limit(limit)).all()
        for row in rows:
            cause = _pause_start(conn, row.id)
            lag = timedelta(0)
            if cause is not None:
                lag = max(timedelta(0), cause.received_at - cause.occurred_at)
            at = now - lag
            if at < row.page_due_at:
                continue
            conn.execute(sa.update(i).where(i.c.id == row.id, i.c.last_notified_at.is_(None))
                         .values(last_notified_at=at))
            if cause is not None:
                # The alert that opened the page is the one that caused it, as if the
                # pause had been 0: noise stats and family stats count the page.
                conn.execute(sa.update(t.memberships).where(t.memberships.c.event_id == cause.id)
                             .values(notify=True))
            released.append(HeldPage(row.id, cause.id if cause is not None else None, at))
        enqueue(conn, [Owed(p.incident_id, "trigger", p.cause_event_id or "auto-pause") for p in released],
                targets, now)
    return released


def _pause_start(conn: sa.Connection, incident_id: str) -> sa.Row[Any, Any, Any] | None:
    """The incident's first firing alert: the one that set its ``page_due_at``."""
    e, m = t.events, t.memberships
    return conn.execute(
        sa.select(e.c.id, e.c.occurred_at, e.c.received_at)
        .select_from(m.join(e, e.c.id == m.c.event_id))
        .where(m.c.incident_id == incident_id, e.c.kind == "alert", e.c.status == "firing")
        .order_by(e.c.occurred_at, e.c.id).limit(1)).first()
