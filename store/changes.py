"""Changes (deploys, configuration, flags) as the consumers recorded them, and the
versions each service has reported.

Written in the batch's transaction (``record_changes``), idempotent by change id like
events are: a redelivered batch, or two consumers that both saw a service's new version,
record each change once. Read back by service and time (``ChangeStore.changes_near``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from triage.domain.change import Change, ChangeKind, version_change
from triage.store.schema import UTCDateTime, metadata

changes = sa.Table(
    "changes", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("service", sa.String(200)),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    # Free text from labels, whose values may be long: unbounded, so none is ever refused.
    sa.Column("version", sa.Text),
    sa.Column("previous_version", sa.Text),
    sa.Column("who", sa.Text),
    sa.Column("link", sa.Text),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Index("ix_changes_service_occurred", "service", "occurred_at"),
    sa.Index("ix_changes_occurred_at", "occurred_at"),
)

# The versions each service has reported (OpenTelemetry's ``service.version``), with when
# each was first seen: what tells a new version (a deploy) from one already known.
service_versions = sa.Table(
    "service_versions", metadata,
    sa.Column("service", sa.String(200), primary_key=True),
    sa.Column("version", sa.String(200), primary_key=True),
    sa.Column("first_seen", UTCDateTime(), nullable=False),
)
MAX_TRACKED_VERSION = 200   # the column's bound: a longer "version" is no version anyone deploys

_c = changes.c


def _insert(dialect: str, table: sa.Table) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).on_conflict_do_nothing()


def record_changes(conn: sa.Connection, found: Sequence[Change], received_at: datetime) -> None:
    """Insert ``found``, skipping ids already stored, in id order (two writers lock rows in
    the same order)."""
    unique = sorted({c.id: c for c in found}.values(), key=lambda c: c.id)
    if unique:
        conn.execute(_insert(conn.dialect.name, changes), [
            {"id": c.id, "service": c.service, "kind": c.kind.value, "occurred_at": c.occurred_at,
             "description": c.description, "source": c.source, "version": c.version,
             "previous_version": c.previous_version, "who": c.who, "link": c.link, "received_at": received_at}
            for c in unique])


class VersionTracker:
    """Turns the ``service.version`` events carry into deploys: the first time a service
    reports a version it never reported before, after an earlier one, that is a change
    (``version_change``), dated by the first event with the new version. A service's very
    first version is only learned. A version seen again later (a rollback to it) is not
    a new change: only versions never seen are.

    The pairs known are kept in memory as well, so a batch whose versions are all known
    (nearly every batch) costs no query."""

    _MAX_KNOWN = 100_000

    def __init__(self) -> None:
        self._known: set[tuple[str, str]] = set()

    def observe(self, conn: sa.Connection, seen: Mapping[tuple[str, str], datetime],
                announced: Collection[tuple[str, str]] = ()) -> list[Change]:
        """``seen``: (service, version) -> the earliest time a batch's event carried it;
        ``announced``: those of them a change record already names (learned, never a second
        change). Records new pairs, inside the caller's transaction, and returns the
        changes they make."""
        new = {pair: at for pair, at in seen.items()
               if pair not in self._known and pair[0] and 0 < len(pair[1]) <= MAX_TRACKED_VERSION}
        if not new:
            return []
        services = sorted({service for service, _ in new})
        known: dict[str, list[tuple[datetime, str]]] = {}
        rows = conn.execute(sa.select(service_versions).where(service_versions.c.service.in_(services)))
        for row in rows:
            known.setdefault(row.service, []).append((row.first_seen, row.version))
        found: list[Change] = []
        fresh = []
        for (service, version), at in sorted(new.items(), key=lambda item: (item[1], item[0])):
            versions = known.setdefault(service, [])
            if any(v == version for _, v in versions):
                continue
            if versions and (service, version) not in announced:
                found.append(version_change(service, version, at, previous=max(versions)[1]))
            versions.append((at, version))
            fresh.append({"service": service, "version": version, "first_seen": at})
        if fresh:
            conn.execute(_insert(conn.dialect.name, service_versions), fresh)
        return found

    def knows(self, pair: tuple[str, str]) -> bool:
        return pair in self._known

    def committed(self, seen: Iterable[tuple[str, str]]) -> None:
        """The batch that observed ``seen`` is durable: they are known from now on."""
        if len(self._known) > self._MAX_KNOWN:
            self._known.clear()
        self._known.update(pair for pair in seen if len(pair[1]) <= MAX_TRACKED_VERSION)


def _change(row: Any) -> Change:
    return Change(id=row.id, service=row.service, kind=ChangeKind(row.kind), occurred_at=row.occurred_at,
                  description=row.description, source=row.source, version=row.version,
                  previous_version=row.previous_version, who=row.who, link=row.link)


class ChangeStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def changes_near(self, services: Collection[str] | None, since: datetime | None = None,
                     until: datetime | None = None, *, limit: int = 1000, offset: int = 0) -> list[Change]:
        """The changes of ``services`` (None: of any service) that happened in
        [``since``, ``until``], newest first, then by id."""
        query = sa.select(changes)
        if services is not None:
            if not services:
                return []
            query = query.where(_c.service.in_(sorted(services)))
        if since is not None:
            query = query.where(_c.occurred_at >= since)
        if until is not None:
            query = query.where(_c.occurred_at <= until)
        query = query.order_by(_c.occurred_at.desc(), _c.id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [_change(r) for r in conn.execute(query)]

    def get(self, change_id: str) -> Change | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(changes).where(_c.id == change_id)).first()
        return _change(row) if row is not None else None
