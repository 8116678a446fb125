"""The statements every batch runs before it writes, sent straight to the database driver.

A batch of a few events (a quiet stream, or 1,000 events/s arriving ten at a time) runs
the same handful of statements each time: lock its scopes, look up which events are
already stored, read the newest parameters version and the events' signals. Through
SQLAlchemy's execution layers each cost about 60 µs of Python around 5-10 µs of SQLite,
together a third of such a batch's time (docs/benchmarks.md, "Ninth session"). Here they
are SQL text written once per dialect and run on the transaction's own DBAPI cursor. A
list of keys is one parameter: a JSON array read by ``json_each`` on SQLite, an array on
PostgreSQL. Everything else the store does stays in SQLAlchemy Core.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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

    def bump_scopes(self, conn: sa.Connection, keys: Sequence[str]) -> dict[str, int]:
        """Each scope's new revision, bumped in the order given (callers sort: two writers
        then take their locks in the same order and cannot deadlock)."""
        return {k: int(driver_rows(conn, self._bump_scope, (k,))[0][0]) for k in keys}

    def stored_ids(self, conn: sa.Connection, ids: Sequence[str]) -> list[str]:
        return [row[0] for row in driver_rows(conn, self._stored_ids, (self._keys(ids),))]

    def signals(self, conn: sa.Connection, keys: Sequence[str]) -> list[tuple[Any, ...]]:
        """(key, incident_id, status, first_seen, last_seen, count) of the signals found."""
        time = self._time
        return [(k, incident, status, time(first), time(last), count)
                for k, incident, status, first, last, count in driver_rows(conn, self._signals, (self._keys(keys),))]


def _result_processor(column: sa.Column[Any], dialect: sa.Dialect) -> Callable[[Any], Any]:
    """What SQLAlchemy does to ``column``'s values as they are read (the aware UTC
    datetimes of ``UTCDateTime``, parsed from SQLite's text)."""
    process = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return process if process is not None else (lambda value: value)
