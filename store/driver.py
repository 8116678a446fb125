"""The statements every batch runs before it writes, sent straight to the database driver.

A batch of a few events (a quiet stream, or 1,000 events/s arriving ten at a time) runs
the same handful of statements each time: lock its scopes, look up which events are
already stored, read the newest parameters version and the events' signals. Through
SQLAlchemy's execution layers each cost about 60 µs of Python around 5-10 µs of SQLite,
together a third of such a batch's time (docs/benchmarks.md, "Why the hot path is built
as it is"). Here they
are SQL text written once per dialect and run on the transaction's own DBAPI cursor. A
list of keys is one parameter: a JSON array read by ``json_each`` on SQLite, an array on
PostgreSQL. On PostgreSQL the batch's first four (the lock, the stored ids, the signals,
the parameters version) go as one pipeline: one round trip (``BatchReads.opening``).
Everything else the store does stays in SQLAlchemy Core.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from triage.store import schema as t


@contextmanager
def driver_cursor(conn: sa.Connection) -> Iterator[Any]:
    """A DBAPI cursor in ``conn``'s transaction, which must have begun."""
    cursor = conn.connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def driver_rows(conn: sa.Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """``sql`` run in ``conn``'s transaction; its rows as tuples."""
    with driver_cursor(conn) as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


NEWEST_PARAMETERS = "SELECT max(version) FROM parameter_versions"


@dataclass
class Opening:
    """What a batch reads before it correlates (``BatchReads.opening``)."""

    revisions: dict[str, int]                # each scope's revision after this batch's bump
    stored: set[str]                         # the ids already stored
    signals: list[tuple[Any, ...]]           # (key, incident_id, status, first_seen, last_seen, count)
    newest_parameters: int                   # the newest parameters version (0: the defaults)


class BatchReads:
    """The per-batch statements for one dialect."""

    def __init__(self, dialect: sa.Dialect) -> None:
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        postgres = dialect.name == "postgresql"

        def keys_in(column: str) -> str:
            if postgres:
                return f"{quote(column)} = ANY({mark})"
            return f"{quote(column)} IN (SELECT value FROM json_each({mark}))"

        self._postgres = postgres
        self._keys: Callable[[Sequence[str]], Any] = list if postgres else json.dumps
        scopes, key, revision = quote("scopes"), quote("key"), quote("revision")
        # Creates the scope's row or bumps its revision: on PostgreSQL the update takes the
        # row lock, on SQLite the first write takes the database's write lock.
        self._bump_scope = (f"INSERT INTO {scopes} ({key}, {revision}) VALUES ({mark}, 1) "
                            f"ON CONFLICT ({key}) DO UPDATE SET {revision} = {scopes}.{revision} + 1 "
                            f"RETURNING {revision}")
        self._stored_ids = f"SELECT {quote('id')} FROM {quote('events')} WHERE {keys_in('id')}"
        signal_columns = ("key", "incident_id", "status", "first_seen", "last_seen", "count")
        self._signals = (f"SELECT {', '.join(quote(c) for c in signal_columns)} FROM {quote('signals')} "
                         f"WHERE {keys_in('key')}")
        self._time = _result_processor(t.signals.c.first_seen, dialect)

    def opening(self, conn: sa.Connection, scopes: Sequence[str], ids: Sequence[str],
                signal_keys: Sequence[str]) -> Opening:
        """A batch's first statements, in this order: bump ``scopes`` (taking their locks),
        then read which of ``ids`` are stored, the signals of ``signal_keys`` and the
        newest parameters version. On PostgreSQL they go as one pipeline, one round trip
        instead of one each (production's database is across a network); SQLite has no
        round trips to save."""
        if not self._postgres:
            return Opening(self.bump_scopes(conn, scopes), set(self.stored_ids(conn, ids)),
                           self.signals(conn, signal_keys), int(driver_rows(conn, NEWEST_PARAMETERS)[0][0] or 0))
        raw = conn.connection.driver_connection
        statements: list[tuple[str, tuple[Any, ...]]] = [(self._bump_scope, (k,)) for k in scopes]
        statements += [(self._stored_ids, (self._keys(ids),)), (self._signals, (self._keys(signal_keys),)),
                       (NEWEST_PARAMETERS, ())]
        cursors = [raw.cursor() for _ in statements]   # type: ignore[union-attr]
        try:
            with raw.pipeline():   # type: ignore[union-attr]
                for cursor, (sql, params) in zip(cursors, statements):
                    cursor.execute(sql, params)
            rows = [cursor.fetchall() for cursor in cursors]
        finally:
            for cursor in cursors:
                cursor.close()
        bumped, (stored, signals, newest) = rows[:len(scopes)], rows[len(scopes):]
        return Opening({k: int(r[0][0]) for k, r in zip(scopes, bumped)}, {r[0] for r in stored},
                       self._signal_rows(signals), int(newest[0][0] or 0))

    def bump_scopes(self, conn: sa.Connection, keys: Sequence[str]) -> dict[str, int]:
        """Each scope's new revision, bumped in the order given (callers sort: two writers
        then take their locks in the same order and cannot deadlock)."""
        return {k: int(driver_rows(conn, self._bump_scope, (k,))[0][0]) for k in keys}

    def stored_ids(self, conn: sa.Connection, ids: Sequence[str]) -> list[str]:
        return [row[0] for row in driver_rows(conn, self._stored_ids, (self._keys(ids),))]

    def signals(self, conn: sa.Connection, keys: Sequence[str]) -> list[tuple[Any, ...]]:
        """(key, incident_id, status, first_seen, last_seen, count) of the signals found."""
        return self._signal_rows(driver_rows(conn, self._signals, (self._keys(keys),)))

    def _signal_rows(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        time = self._time
        return [(k, incident, status, time(first), time(last), count) for k, incident, status, first, last, count in rows]


def _result_processor(column: sa.Column[Any], dialect: sa.Dialect) -> Callable[[Any], Any]:
    """What SQLAlchemy does to ``column``'s values as they are read (the aware UTC
    datetimes of ``UTCDateTime``, parsed from SQLite's text)."""
    process = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return process if process is not None else (lambda value: value)
