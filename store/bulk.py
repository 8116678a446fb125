"""Rows in bulk: the tuples a batch writes to its tables, and the fast ways they go in.

A batch writes one row per event to ``events`` and ``memberships`` and about one to
``signals``, and rewrites every incident it touched (profiles included). Through
SQLAlchemy's per-row parameter processing these writes cost more than correlating the
events, so they bypass it: rows are tuples, JSON is serialized once, each column's bind
processor is looked up once (``BulkInsert``); one driver ``executemany`` per table,
pipelined on PostgreSQL (``pipelined``), or PostgreSQL's binary COPY from
``COPY_MIN_ROWS`` events on (docs/benchmarks.md, "Why the hot path is built as it is").
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from triage.correlation import Decision, IncidentState
from triage.domain.event import Event
from triage.store import schema as t
from triage.store.driver import driver_cursor
from triage.store.engine import json_dumps
from triage.store.rows import incident_row

# Column order of the tuples the bulk inserts take (see ``BulkInsert``).
_EVENT_COLUMNS = ("id", "kind", "source", "occurred_at", "received_at", "service", "host", "severity",
                  "status", "title", "fingerprint", "document")
_MEMBERSHIP_COLUMNS = ("event_id", "incident_id", "action", "rule", "evidence", "parameters_version",
                       "notify", "decided_at", "template_id")
_SIGNAL_COLUMNS = ("key", "incident_id", "status", "first_seen", "last_seen", "count")
# What ``incident_row`` writes: every column but ``merged_into``, which only a merge sets.
_INCIDENT_COLUMNS = tuple(c.name for c in t.incidents.columns if c.name != "merged_into")
_INCIDENT_JSON = frozenset(c.name for c in t.incidents.columns if isinstance(c.type, sa.JSON))
BULK_COLUMNS = {"events": _EVENT_COLUMNS, "memberships": _MEMBERSHIP_COLUMNS, "signals": _SIGNAL_COLUMNS,
                 "incidents": _INCIDENT_COLUMNS}


def event_values(e: Event, received_at: Any, document: str | None = None) -> tuple[Any, ...]:
    """An ``events`` row; ``document`` is the event's ``document_json`` when made beforehand."""
    return (e.id, e.kind.value, e.source, e.occurred_at, received_at, e.service, e.host, e.severity.value,
            e.status.value, e.title, e.fingerprint, document or document_json(e))


def document_json(e: Event) -> str:
    """The whole validated event as JSON, serialized by pydantic in one step (model_dump +
    json.dumps built the same JSON through a dict, at over twice the cost). pydantic
    writes NaN and infinities as null, which the model would refuse when the document is
    read back, so an event that may hold one (a float label, or a raw payload) keeps the
    old path, which writes them as Python's json does."""
    if e.raw is None and all(type(v) is not float or math.isfinite(v) for v in e.labels.values()):
        return e.model_dump_json()
    return json.dumps(e.model_dump(mode="json"))


def incident_values(i: IncidentState) -> tuple[Any, ...]:
    row = incident_row(i)
    return tuple(json_dumps(row[c]) if c in _INCIDENT_JSON else row[c] for c in _INCIDENT_COLUMNS)


def membership_values(d: Decision, decided_at: Any) -> tuple[Any, ...]:
    evidence = d.evidence
    # (str() of a str enum is its text, a tenth of the cost of ``.value``, a Python property)
    return (d.event_id, d.incident_id, str(d.action), str(d.rule), json_dumps(evidence.as_json()),
            d.parameters_version, d.notify, decided_at, evidence.template)


# From this many events a batch's inserts go by COPY on PostgreSQL (``UnitOfWork.write``).
COPY_MIN_ROWS = 100


class BulkInsert:
    """An INSERT of many rows (or an upsert on the primary key) run as one driver
    ``executemany``: SQLAlchemy's per-row parameter processing (a dict per row, a type
    look-up per value) cost more than correlating the events.

    Rows are tuples in ``columns`` order. Each column's own bind processor (UTC
    datetimes, SQLite's datetime text, booleans) is looked up once, so values are stored
    exactly as ``conn.execute(table.insert(), rows)`` would store them. JSON columns
    take text already serialized (cast to the column's JSON or JSONB on PostgreSQL). psycopg 3 pipelines an
    ``executemany``; sqlite3 runs it in C. On PostgreSQL a large batch goes by ``copy``."""

    def __init__(self, dialect: sa.Dialect, table: sa.Table, columns: Sequence[str], *,
                 upsert: bool = False) -> None:
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        marks: list[str] = []
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, name in enumerate(columns):
            column = table.c[name]
            if isinstance(column.type, sa.JSON):
                kind = column.type.dialect_impl(dialect).compile(dialect=dialect)
                marks.append(f"CAST({mark} AS {kind})" if dialect.name == "postgresql" else mark)
                continue
            marks.append(mark)
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self._processors.append((i, _last_value_cached(process)))
        names = ", ".join(quote(c) for c in columns)
        self.sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join(marks)})"
        conflict = ""
        if upsert:
            keys = [c.name for c in table.primary_key.columns]
            updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in keys)
            conflict = f" ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {updates}"
            self.sql += conflict
        # PostgreSQL's COPY (see ``copy``): straight into the table, or for an upsert into
        # a temporary table of this connection, emptied at every commit, then merged.
        self._stage: tuple[str, str] | None = None
        self.copy_sql: str | None = None
        if dialect.name == "postgresql":
            target = quote(table.name)
            if upsert:
                stage = quote(f"triage_stage_{table.name}")
                self._stage = (f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {target}) ON COMMIT DELETE ROWS",
                               f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage}{conflict}")
                target = stage
            # COPY's binary format where every column has one: no text to escape on
            # this side, none to parse on the server's (half the client's CPU per row).
            self._copy_types = binary_copy_types(dialect, table, columns)
            binary = " (FORMAT BINARY)" if self._copy_types is not None else ""
            self.copy_sql = f"COPY {target} ({names}) FROM STDIN{binary}"

    def row(self, values: Sequence[Any]) -> tuple[Any, ...]:
        out = list(values)
        for i, process in self._processors:
            out[i] = process(out[i])
        return tuple(out)

    def run(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with driver_cursor(conn) as cursor:   # see store/driver.py
                cursor.executemany(self.sql, rows)

    def copy(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        """The same rows by PostgreSQL's COPY, for large batches: psycopg's ``executemany``
        costs several times more Python per row than COPY's ``write_row``, and an upsert
        merges all its rows in one statement. (COPY cannot run in psycopg's pipeline mode.)"""
        if self.copy_sql is None:
            raise ValueError("COPY is PostgreSQL's")
        if not rows:
            return
        with driver_cursor(conn) as cursor:
            if self._stage is not None:
                # Every time: a transaction rolled back takes the table's creation with it.
                cursor.execute(self._stage[0])
            with cursor.copy(self.copy_sql) as copy:
                if self._copy_types is not None:
                    copy.set_types(self._copy_types)
                for row in rows:
                    copy.write_row(row)
            if self._stage is not None:
                cursor.execute(self._stage[1])


def binary_copy_types(dialect: sa.Dialect, table: sa.Table, columns: Sequence[str]) -> list[str] | None:
    """The PostgreSQL types psycopg dumps ``columns``' values as in a binary COPY, or None
    when one has no such type here. A value's binary form must be its column's exactly:
    character types all take text's; a ``json`` column takes its (already serialized)
    text as text, where JSONB's binary form would need a version byte."""
    types: list[str] = []
    for name in columns:
        impl = table.c[name].type.dialect_impl(dialect)
        if isinstance(impl, sa.TypeDecorator):
            impl = impl.impl_instance
        if isinstance(impl, postgresql.JSONB):
            return None
        if isinstance(impl, (sa.String, sa.JSON)):   # sa.Text is a String
            types.append("text")
        elif isinstance(impl, sa.DateTime) and impl.timezone:
            types.append("timestamptz")
        elif isinstance(impl, sa.Boolean):
            types.append("bool")
        elif isinstance(impl, sa.BigInteger):
            types.append("int8")
        elif isinstance(impl, sa.SmallInteger):
            types.append("int2")
        elif isinstance(impl, sa.Integer):
            types.append("int4")
        else:
            return None
    return types


def _last_value_cached(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` remembering its last (immutable) argument: consecutive rows often share
    a value, such as the batch's ``received_at``."""
    last: list[tuple[Any, Any]] = [(object(), None)]   # (argument, result), swapped whole

    def cached(value: Any) -> Any:
        pair = last[0]
        if pair[0] is not value:
            pair = last[0] = (value, process(value))
        return pair[1]
    return cached


@contextmanager
def pipelined(conn: sa.Connection) -> Iterator[None]:
    """On PostgreSQL, send the batch's writes without waiting for each answer (psycopg's
    pipeline mode): one round trip for all of them instead of one each."""
    if conn.dialect.name != "postgresql":
        yield
        return
    with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
        yield
