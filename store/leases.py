"""Job leases: one row per periodic job, so that of several replicas one runs it at a time.

``claim`` takes the lease when it is free, expired, or already ours, and holds it until
``now + ttl``; ``release`` gives it back early. A holder that dies simply lets its lease
run out. Works the same on SQLite and PostgreSQL (one conditional UPDATE, else one
INSERT … ON CONFLICT DO NOTHING: whoever's statement lands first wins).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from triage.store.schema import UTCDateTime, metadata

job_leases = sa.Table(
    "job_leases", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("until", UTCDateTime(), nullable=False),
)


def claim(engine: sa.Engine, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    j = job_leases
    with engine.begin() as conn:
        # RETURNING rather than rowcount, which drivers report differently for ON CONFLICT.
        taken = conn.execute(sa.update(j).where(j.c.name == name, sa.or_(j.c.until <= now, j.c.holder == holder))
                             .values(holder=holder, until=now + ttl).returning(j.c.name)).first()
        if taken is not None:
            return True
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        return conn.execute(insert(j).values(name=name, holder=holder, until=now + ttl)
                            .on_conflict_do_nothing().returning(j.c.name)).first() is not None


def release(engine: sa.Engine, name: str, holder: str, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(job_leases).where(job_leases.c.name == name, job_leases.c.holder == holder)
                     .values(until=now))
