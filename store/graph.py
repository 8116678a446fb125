"""The service graph traces reveal: caller -> callee edges, with when they were seen."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from triage.store.schema import UTCDateTime, metadata

service_edges = sa.Table(
    "service_edges", metadata,
    sa.Column("caller", sa.String(200), primary_key=True),
    sa.Column("callee", sa.String(200), primary_key=True),
    sa.Column("first_seen", UTCDateTime(), nullable=False),
    sa.Column("last_seen", UTCDateTime(), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
)


@dataclass(frozen=True)
class Edge:
    caller: str
    callee: str
    first_seen: datetime
    last_seen: datetime
    count: int


_c = service_edges.c
_UPSERTS: dict[str, Any] = {}


def _upsert_edges(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE widening the seen span and adding the count: one
    statement per batch, where a select, an update and an insert took three round trips.
    Built once per dialect (statement construction cost more than running it)."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        pg = dialect == "postgresql"
        insert = (postgresql.insert if pg else sqlite.insert)(service_edges)
        # SQLite's two-argument min/max are scalar; its datetimes are fixed-width text.
        lo, hi = (sa.func.least, sa.func.greatest) if pg else (sa.func.min, sa.func.max)
        stmt = _UPSERTS[dialect] = insert.on_conflict_do_update(
            index_elements=[_c.caller, _c.callee],
            set_={"first_seen": lo(_c.first_seen, insert.excluded.first_seen),
                  "last_seen": hi(_c.last_seen, insert.excluded.last_seen),
                  "count": _c.count + insert.excluded.count})
    return stmt


def record_edges(conn: sa.Connection, observed: Iterable[tuple[str, str, datetime]]) -> None:
    """Fold a batch's observations into the graph, inside the batch's transaction. Rows go
    in key order, so two writers touching the same edges lock them in the same order."""
    folded: dict[tuple[str, str], list[datetime]] = {}
    for caller, callee, at in observed:
        if caller and callee and caller != callee:
            folded.setdefault((caller, callee), []).append(at)
    if folded:
        conn.execute(_upsert_edges(conn.dialect.name), [
            {"caller": caller, "callee": callee, "first_seen": min(times), "last_seen": max(times),
             "count": len(times)} for (caller, callee), times in sorted(folded.items())])


def load_edges(engine: sa.Engine) -> list[Edge]:
    with engine.connect() as conn:
        return [Edge(r.caller, r.callee, r.first_seen, r.last_seen, r._mapping["count"])
                for r in conn.execute(sa.select(service_edges).order_by(service_edges.c.caller, service_edges.c.callee))]
