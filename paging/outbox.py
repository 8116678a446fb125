"""The outbox: pages owed, written in the same transaction as the incident change that
owes them, delivered afterwards by the sender, marked sent only after delivery.

``pages_owed`` says which pages a batch's decisions owe; ``owe_pages`` writes them in the
batch's transaction (the pipeline calls it before the batch commits)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from triage.correlation import CorrelationState, Decision
from triage.store.schema import outbox


@dataclass(frozen=True)
class OutboxItem:
    id: str
    incident_id: str
    target: str
    action: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Owed:
    """One page owed: the pipeline computes these from a batch's decisions."""

    incident_id: str
    action: str
    cause_event_id: str


def pages_owed(decisions: list[Decision], state: CorrelationState) -> list[Owed]:
    """One trigger per incident whose page (or update) fell due in these decisions, one
    resolve per paged incident that resolved in them. The correlator already applied
    Alertmanager's timers, so an incident gaining 500 alerts owes a handful, not 500."""
    owed: dict[tuple[str, str], Owed] = {}
    for d in decisions:
        if d.notify:
            owed.setdefault((d.incident_id, "trigger"), Owed(d.incident_id, "trigger", d.event_id))
        elif d.incident_resolved:
            incident = state.incidents.get(d.incident_id)
            if incident is not None and incident.last_notified_at is not None:
                owed.setdefault((d.incident_id, "resolve"), Owed(d.incident_id, "resolve", d.event_id))
    return list(owed.values())


def owe_pages(conn: sa.Connection, decisions: list[Decision], state: CorrelationState, targets: Sequence[str],
              now: datetime, *, group_wait: float, reopen_window: float = 0.0) -> None:
    """The outbox rows a batch's decisions owe, in the batch's transaction (``conn``). A new
    incident's first page waits ``group_wait`` seconds, so that the alerts arriving with it
    are in it; the page is composed when it is sent. A resolve waits ``reopen_window``
    seconds: if a flapping alert re-fires into the incident meanwhile, the sender drops
    it and the incident's page stays open (PagerDuty's dedup key is the incident: a
    trigger after a resolve would page someone again)."""
    owed = pages_owed(decisions, state)
    enqueue(conn, [o for o in owed if o.action == "trigger"], targets, now + timedelta(seconds=group_wait))
    enqueue(conn, [o for o in owed if o.action == "resolve"], targets, now + timedelta(seconds=reopen_window))


def enqueue(conn: sa.Connection, owed: Iterable[Owed], targets: Iterable[str], due: datetime) -> int:
    """Insert outbox rows inside the caller's transaction; ids make a redelivered batch a no-op."""
    targets = list(targets)
    now = datetime.now(timezone.utc)
    rows = [{"id": f"{target}:{o.incident_id}:{o.action}:{o.cause_event_id}", "incident_id": o.incident_id,
             "target": target, "action": o.action, "status": "pending", "attempts": 0, "created_at": now,
             "next_attempt_at": due} for o in owed for target in targets]
    if not rows:
        return 0
    existing = set(conn.scalars(sa.select(outbox.c.id).where(outbox.c.id.in_([r["id"] for r in rows]))))
    fresh = [r for r in rows if r["id"] not in existing]
    if fresh:
        conn.execute(sa.insert(outbox), fresh)
    return len(fresh)


class OutboxStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def claim_due(self, now: datetime, limit: int = 50, lease: timedelta = timedelta(seconds=60)) -> list[OutboxItem]:
        """Take due rows and push their next attempt out by ``lease``: a second sender (or
        this one after a crash) retries them only when the lease has run out. A row waits
        while an older row of the same incident and target is still pending, so a resolve
        never overtakes the trigger it resolves."""
        o = outbox
        older = o.alias("older")
        blocked = sa.exists().where(older.c.incident_id == o.c.incident_id, older.c.target == o.c.target,
                                    older.c.status == "pending", older.c.created_at < o.c.created_at)
        due = (sa.select(o.c.id).where(o.c.status == "pending", o.c.next_attempt_at <= now, ~blocked)
               .order_by(o.c.created_at, o.c.id).limit(limit))
        if self.engine.dialect.name == "postgresql":
            due = due.with_for_update(of=o, skip_locked=True)
        # One statement that writes: no read lock to upgrade half-way (SQLite would answer
        # "database is locked" if a batch committed in between).
        claim = (sa.update(o).where(o.c.id.in_(due.scalar_subquery()))
                 .values(next_attempt_at=now + lease, attempts=o.c.attempts + 1)
                 .returning(o.c.id, o.c.incident_id, o.c.target, o.c.action, o.c.attempts, o.c.created_at))
        with self.engine.begin() as conn:
            rows = list(conn.execute(claim).all())
        rows.sort(key=lambda r: (r.created_at, r.id))
        return [OutboxItem(r.id, r.incident_id, r.target, r.action, r.attempts, r.created_at) for r in rows]

    def mark_sent(self, item_id: str, now: datetime) -> None:
        self._set(item_id, status="sent", sent_at=now, last_error=None)

    def retry_later(self, item_id: str, error: str, at: datetime) -> None:
        self._set(item_id, next_attempt_at=at, last_error=error[:2000])

    def give_up(self, item_id: str, error: str) -> None:
        self._set(item_id, status="failed", last_error=error[:2000])

    def skip(self, item_id: str, reason: str) -> None:
        """Not to be sent, and not an error (a trigger for an incident that is over unpaged)."""
        self._set(item_id, status="skipped", last_error=reason[:2000])

    def _set(self, item_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(outbox).where(outbox.c.id == item_id).values(**values))

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {r.status: int(r.n) for r in conn.execute(
                sa.select(outbox.c.status, sa.func.count().label("n")).group_by(outbox.c.status))}

    def items(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(outbox).order_by(outbox.c.created_at))]
