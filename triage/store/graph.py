"""The service graph traces reveal: caller -> callee edges, with when they were seen."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

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
# Built once: a batch with spans runs these (statement construction cost more than running them).
_EDGES_NAMED = sa.select(service_edges).where(
    sa.tuple_(_c.caller, _c.callee).in_(sa.bindparam("keys", expanding=True)))
_ADD_EDGE = sa.insert(service_edges)
_UPDATE_EDGE = sa.update(service_edges).where(
    _c.caller == sa.bindparam("b_caller"), _c.callee == sa.bindparam("b_callee")).values(
    first_seen=sa.bindparam("b_first_seen"), last_seen=sa.bindparam("b_last_seen"), count=sa.bindparam("b_count"))


def record_edges(conn: sa.Connection, observed: Iterable[tuple[str, str, datetime]]) -> None:
    """Fold a batch's observations into the graph, inside the batch's transaction."""
    folded: dict[tuple[str, str], list[datetime]] = {}
    for caller, callee, at in observed:
        if caller and callee and caller != callee:
            folded.setdefault((caller, callee), []).append(at)
    if not folded:
        return
    existing = {(r.caller, r.callee): r for r in conn.execute(_EDGES_NAMED, {"keys": list(folded)})}
    added, updated = [], []
    for (caller, callee), times in folded.items():
        row = existing.get((caller, callee))
        if row is None:
            added.append({"caller": caller, "callee": callee, "first_seen": min(times), "last_seen": max(times),
                          "count": len(times)})
        else:
            updated.append({"b_caller": caller, "b_callee": callee, "b_first_seen": min(row.first_seen, *times),
                            "b_last_seen": max(row.last_seen, *times), "b_count": row._mapping["count"] + len(times)})
    if added:
        conn.execute(_ADD_EDGE, added)
    if updated:
        conn.execute(_UPDATE_EDGE, updated)


def load_edges(engine: sa.Engine) -> list[Edge]:
    with engine.connect() as conn:
        return [Edge(r.caller, r.callee, r.first_seen, r.last_seen, r._mapping["count"])
                for r in conn.execute(sa.select(service_edges).order_by(service_edges.c.caller, service_edges.c.callee))]
