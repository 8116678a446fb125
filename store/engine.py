"""Engine set-up: the database URL to an SQLAlchemy engine tuned for triage's batches, the
JSON codec of its JSON columns, and how a database failure is classified.

SQLite (embedded default: WAL, our own transactions, the checkpointer's autocheckpoint
bound) and PostgreSQL through psycopg 3 (a connect timeout, custom plans).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import pydantic_core
import sqlalchemy as sa

from triage.domain.errors import RefusedEvents, StoreUnavailable
from triage.store.checkpoint import SAFETY_NET_PAGES
from triage.store.driver import driver_rows

# Stay well under SQLite's and PostgreSQL's bound-parameter limits in IN (...) lists.
_CHUNK = 500


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# SQLSTATE classes (PostgreSQL's appendix A). About the values written: data exception,
# program limit exceeded (an index entry too large). Never about them: connection,
# invalid transaction state (read-only), transaction rollback (serialization, deadlock),
# insufficient resources (disk full, too many connections), object not in prerequisite
# state (lock not available), operator intervention (shutdown, statement timeout),
# system error.
_REFUSED_CLASSES = frozenset({"22", "54"})
_UNAVAILABLE_CLASSES = frozenset({"08", "25", "40", "53", "55", "57", "58"})


def in_window(column: sa.ColumnElement[Any], since: Any | None, until: Any | None) -> list[sa.ColumnElement[bool]]:
    """The conditions ``since <= column < until``, each bound left out when it is None (the
    API's and the figures' half-open windows)."""
    cond: list[sa.ColumnElement[bool]] = []
    if since is not None:
        cond.append(column >= since)
    if until is not None:
        cond.append(column < until)
    return cond


def classify_failure(exc: BaseException, dbapi: Any) -> Literal["refused", "unavailable"] | None:
    """"refused", "unavailable" or None (neither: maybe a poison, maybe a bug) for a
    failure of the database (SQLAlchemy's wrapper, or the driver's own error)."""
    orig = getattr(exc, "orig", None) or exc
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        group = sqlstate[:2]
        return "refused" if group in _REFUSED_CLASSES else "unavailable" if group in _UNAVAILABLE_CLASSES else None
    if isinstance(exc, sa.exc.DataError) or isinstance(orig, dbapi.DataError):
        return "refused"
    if (isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError))
            or isinstance(orig, (dbapi.OperationalError, dbapi.InterfaceError))
            or getattr(exc, "connection_invalidated", False)):
        return "unavailable"   # SQLite's locked or unwritable file; a connection lost before any SQLSTATE
    return None


@contextmanager
def ingest_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that writes what ingest brought, its failures sorted for the
    consumer (``classify_failure``): the database's data exceptions (a NUL character in
    text, a value out of range, an index entry too large) come out as
    ``RefusedEvents``: they are about the values, and the same batch would be refused
    on every retry; failures no value can cause (the connection, the disk, a read-only
    server, a lock or statement timeout) as ``StoreUnavailable``; anything else as it
    is. They are raised through SQLAlchemy or, on the paths that use the driver's
    cursor, by the driver itself."""
    dbapi: Any = engine.dialect.dbapi
    try:
        with engine.begin() as conn:
            yield conn
    except (sa.exc.DBAPIError, sa.exc.TimeoutError, dbapi.Error) as exc:
        kind = classify_failure(exc, dbapi)
        if kind is None:
            raise
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise (RefusedEvents(reason) if kind == "refused" else StoreUnavailable(reason)) from exc


def json_dumps(value: Any) -> str:
    """JSON columns' serializer: pydantic-core's encoder writes what ``json.dumps`` writes
    (NaN and infinities as Python does), compactly and three to four times faster; a batch
    rewrites every incident it touched, profile included. One serializer, built once:
    ``pydantic_core.to_json`` builds one per call, a tenth of the cost of a membership's
    evidence."""
    return _JSON.to_json(value).decode()


_JSON = pydantic_core.SchemaSerializer(pydantic_core.core_schema.any_schema(),
                                       pydantic_core.core_schema.CoreConfig(ser_json_inf_nan="constants"))


def json_loads(text: str | bytes) -> Any:
    return pydantic_core.from_json(text)


def create_engine(url: str) -> sa.Engine:
    json_codec = {"json_serializer": json_dumps, "json_deserializer": json_loads}
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **json_codec)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API read while the consumer writes; the busy timeout makes
            # a second writer wait. Transactions are ours (pysqlite's own are off):
            # a batch starts by writing its scope rows, so it takes the write lock first.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")   # see store/checkpoint.py
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            driver_rows(conn, "BEGIN")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # A server that does not answer (a black-holed network) fails a connection in 10 s
    # rather than when TCP gives up, minutes later: the caller's retry and /readyz see it.
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10}, **json_codec)

    @sa.event.listens_for(engine, "connect")
    def _postgresql_connect(dbapi_conn: Any, _record: Any) -> None:
        # psycopg prepares a statement run five times, and PostgreSQL then settles on a
        # generic plan for it. Planned while a table is still small, that plan can be a
        # sequential scan that it keeps as the table grows (a batch's stored-id and
        # signal look-ups went from 0.2 to 3 ms each over 9,000 events): plan every
        # execution with its own values instead, still skipping the parse.
        with dbapi_conn.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()

    return engine
