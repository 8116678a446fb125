"""The store, in SQL that runs on SQLite (embedded default) and PostgreSQL (production).

One batch is one transaction: lock the batch's scopes, drop events already
stored, load the state those events can touch, let the caller correlate, write
events + memberships + incident and signal changes, commit. A crash anywhere
before the commit leaves nothing behind; a redelivered batch finds its events
stored and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pydantic_core
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from triage.correlation import CorrelationState, Decision, IncidentState, SignalState, dedup_key, scope_of
from triage.correlation.decision import Action
from triage.correlation.evidence import rule_of
from triage.correlation.state import IncidentKind, IncidentStatus, ScopeModels
from triage.correlation.stored_evidence import evidence_from_json
from triage.correlation.templating import Templater
from triage.models.embedder import default_embedder
from triage.models.parameters import CorrelationParameters
from triage.models.recommender import IncidentProfile
from triage.models.topology import ServiceGraph
from triage.domain.errors import RefusedEvents, StoreUnavailable
from triage.domain.event import AS_STORED, Event, Severity, Status
from triage.store import schema as t
from triage.store.checkpoint import SAFETY_NET_PAGES, WalCheckpointer
from triage.store.driver import BatchReads, Opening, driver_cursor, driver_rows
from triage.store.records import (
    BatchResult, IncidentQuery, IncidentRecord, Membership, NoiseBucket, NoiseStats, Page, StoredEvent,
)

Correlate = Callable[[list[Event], CorrelationState], list[Decision]]
# Further writes that must commit or roll back with the batch (the outbox of pages owed).
AfterWrite = Callable[[sa.Connection, list[Decision], CorrelationState, datetime], None]

# Stay well under SQLite's and PostgreSQL's bound-parameter limits in IN (...) lists.
_CHUNK = 500


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _in(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """``column IN (:keys)``, the list bound at execution: the statements every batch runs
    are built once, since building one (and its cache key) cost more than running it."""
    return column.in_(sa.bindparam("keys", expanding=True))


_PROBE = sa.update(t.scopes).where(sa.false()).values(revision=t.scopes.c.revision)

# SQLSTATE classes (PostgreSQL's appendix A). About the values written: data exception,
# program limit exceeded (an index entry too large). Never about them: connection,
# invalid transaction state (read-only), transaction rollback (serialization, deadlock),
# insufficient resources (disk full, too many connections), object not in prerequisite
# state (lock not available), operator intervention (shutdown, statement timeout),
# system error.
_REFUSED_CLASSES = frozenset({"22", "54"})
_UNAVAILABLE_CLASSES = frozenset({"08", "25", "40", "53", "55", "57", "58"})


def _store_failure(exc: BaseException, dbapi: Any) -> str | None:
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


_MODEL_VERSIONS = sa.select(t.correlation_models.c.scope, t.correlation_models.c.version) \
    .where(_in(t.correlation_models.c.scope))


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


@dataclass
class _KeptIncidents:
    """A scope's incidents as this process's last batch committed them: every incident of
    the scope still accepting events at or after ``since``. Valid while the scope's
    revision is still the one that commit left (no other transaction took its lock)."""

    revision: int
    since: datetime
    incidents: list[IncidentState]


class SqlStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._reads = BatchReads(engine.dialect)
        self._add_services = self._insert(t.incident_services).on_conflict_do_nothing()
        # The learned models of the scopes this process decided last, as committed: a
        # batch takes them out (so a failed batch leaves nothing half-learned behind)
        # and puts them back after its commit; the row version says whether they are
        # still current or another process has moved the scope on.
        self._models: dict[str, ScopeModels] = {}
        # Likewise the incidents a batch may touch: reloading them (profiles included)
        # was a fifth of a small batch's time, and the next batch usually needs the same.
        self._kept: dict[str, _KeptIncidents] = {}
        self._kept_lock = threading.Lock()   # guards both: one store may serve several threads
        self._embeddings_loaded = False
        self._embeddings_stored: set[str] = set()
        self._embedder_warm = False
        self._bulk_inserts: dict[tuple[str, bool], _BulkInsert] = {}
        self._upserts: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._checkpointer = (WalCheckpointer(engine).start()
                              if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")
                              else None)

    @classmethod
    def from_url(cls, url: str, *, migrate: bool = True) -> "SqlStore":
        engine = create_engine(url)
        if migrate:
            from triage.store.migrate import upgrade
            upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- writing -----------------------------------------------------------------

    @contextmanager
    def ingest_transaction(self) -> Iterator[sa.Connection]:
        """A transaction that writes what ingest brought, its failures sorted for the
        consumer (``_store_failure``): the database's data exceptions (a NUL character in
        text, a value out of range, an index entry too large) come out as
        ``RefusedEvents``: they are about the values, and the same batch would be refused
        on every retry; failures no value can cause (the connection, the disk, a read-only
        server, a lock or statement timeout) as ``StoreUnavailable``; anything else as it
        is. They are raised through SQLAlchemy or, on the paths that use the driver's
        cursor, by the driver itself."""
        dbapi: Any = self.engine.dialect.dbapi
        try:
            with self.engine.begin() as conn:
                yield conn
        except (sa.exc.DBAPIError, sa.exc.TimeoutError, dbapi.Error) as exc:
            kind = _store_failure(exc, dbapi)
            if kind is None:
                raise
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise (RefusedEvents(reason) if kind == "refused" else StoreUnavailable(reason)) from exc

    def probe(self) -> None:
        """Raise (``StoreUnavailable``, usually) unless the store takes writes now: a
        transaction with an UPDATE that matches no row, which a server that is down,
        read-only or out of connections refuses. What tells the consumer an outage from a
        message that fails alone (``BatchConsumer``)."""
        with self.ingest_transaction() as conn:
            conn.execute(_PROBE)

    def apply(self, events: Sequence[Event], correlate: Correlate, *,
              received_at: datetime | None = None, after_write: AfterWrite | None = None,
              before_correlate: Callable[[sa.Connection, int], None] | None = None) -> BatchResult:
        received_at = received_at or datetime.now(timezone.utc)
        unique = list({e.id: e for e in events}.values())
        if not unique:
            return BatchResult(len(events), 0, 0, 0, 0, 0)
        if not self._embedder_warm:
            # Loading the embedding model takes seconds: do it before taking the lock,
            # not inside the first batch's transaction where every other writer waits.
            default_embedder().warm()
            self._embedder_warm = True
        keys = {e.id: dedup_key(e) for e in unique}
        with self.ingest_transaction() as conn:
            opening = self._reads.opening(conn, sorted({scope_of(e) for e in unique}), list(keys),
                                          sorted(set(keys.values())))
            new = [e for e in unique if e.id not in opening.stored]
            if not new:
                return BatchResult(len(events), 0, 0, 0, 0, 0)
            earliest = min(e.occurred_at for e in new)
            if before_correlate is not None:
                before_correlate(conn, opening.newest_parameters)
            state = self._load_state(conn, new, keys, opening, earliest)
            decisions = correlate(new, state)
            self._write(conn, new, decisions, state, received_at)
            embedded = self._write_embeddings(conn, received_at)
            if after_write is not None:
                after_write(conn, decisions, state, received_at)
        # Committed: what was learned is now the scopes' current state.
        state.clear_dirty()
        kept = {scope: _KeptIncidents(revision, earliest, []) for scope, revision in opening.revisions.items()}
        for incident in state.incidents.values():
            if incident.scope in kept and _accepting_since(incident, earliest):
                kept[incident.scope].incidents.append(incident)
        with self._kept_lock:
            self._models.update(state.models)
            self._kept.update(kept)
        self._embeddings_stored.update(embedded)
        actions = Counter(d.action for d in decisions)
        return BatchResult(
            received=len(events), stored=len(new), suppressed=actions[Action.suppressed],
            attached=actions[Action.attached], opened=actions[Action.opened],
            notified=sum(d.notify for d in decisions), incidents_opened=sum(d.opens_incident for d in decisions),
            noise_groups_opened=sum(d.opens_noise_group for d in decisions),
        )

    def link_services(self, conn: sa.Connection, incident_id: str, services: Iterable[str]) -> None:
        """Add incident -> service links (``incident_services``) the store does not hold yet."""
        rows = [{"incident_id": incident_id, "service": s} for s in sorted(set(services))]
        if rows:
            conn.execute(self._add_services, rows)

    def lock_scopes(self, conn: sa.Connection, keys: list[str]) -> dict[str, int]:
        """Take the scopes' locks for this transaction (in key order, so two writers
        cannot deadlock) and bump their revisions; returns each scope's new revision.
        Whoever writes a scope's incidents must hold its lock."""
        return self._reads.bump_scopes(conn, sorted(set(keys)))

    def _load_state(self, conn: sa.Connection, events: list[Event], keys: dict[str, str], opening: Opening,
                    earliest: datetime) -> CorrelationState:
        """The state these events can touch: their signals (``keys``: event id → dedup key;
        read by ``opening``), the incidents still accepting events in their scopes (and
        those the signals name), the scopes' learned models. A scope's incidents come from
        memory when this process's last batch was the scope's last writer (its revision
        moved by exactly this transaction's bump)."""
        state = CorrelationState()
        revisions = opening.revisions
        scopes = sorted(revisions)
        state.dedup_keys = {e.id: keys[e.id] for e in events}
        wanted_keys = set(state.dedup_keys.values())
        for key, incident_id, status, first_seen, last_seen, count in opening.signals:
            if key in wanted_keys:
                state.signals[key] = SignalState(key=key, incident_id=incident_id, status=Status(status),
                                                 first_seen=first_seen, last_seen=last_seen, count=count,
                                                 stored=True)
        stale, unmoved = [], set()
        for scope in scopes:
            with self._kept_lock:
                kept = self._kept.pop(scope, None)   # taken: a failed batch leaves nothing behind
            if kept is not None and kept.revision == revisions[scope] - 1:
                unmoved.add(scope)   # nobody else has written the scope since our last batch
            if scope in unmoved and kept is not None and kept.since <= earliest:
                for incident in sorted(kept.incidents, key=lambda i: i.id):   # the query's order
                    if _accepting_since(incident, earliest):
                        state.add_incident(incident)
                state.reused.add(scope)
            else:
                stale.append(scope)
        wanted = [sa.and_(t.incidents.c.scope.in_(chunk), t.incidents.c.accepting_until >= earliest)
                  for chunk in chunks(stale)]
        self._add_incidents(conn, state, wanted)
        named = sorted({s.incident_id for s in state.signals.values()} - set(state.incidents))
        self._add_incidents(conn, state, [t.incidents.c.id.in_(chunk) for chunk in chunks(named)])
        self._load_models(conn, scopes, state, unmoved)
        self.load_embeddings(conn)
        return state

    @staticmethod
    def _add_incidents(conn: sa.Connection, state: CorrelationState, wanted: list[sa.ColumnElement[bool]]) -> None:
        for cond in wanted:
            for row in conn.execute(sa.select(t.incidents).where(cond).order_by(t.incidents.c.id)):
                if row.id not in state.incidents:
                    state.add_incident(incident_state(row))

    def _load_models(self, conn: sa.Connection, scopes: list[str], state: CorrelationState,
                     unmoved: set[str]) -> None:
        """The scopes' learned models: this process's own copy when the scope has not moved
        since its last batch committed them (no question asked), else when the row's
        version says the copy is still current, else from the row."""
        cached_models: dict[str, ScopeModels] = {}
        with self._kept_lock:
            for scope in scopes:
                cached = self._models.pop(scope, None)
                if cached is not None:
                    cached_models[scope] = cached
        for scope in sorted(unmoved & set(cached_models)):
            state.models[scope] = cached_models.pop(scope)
        state.reused &= set(state.models)   # incidents and models both this process's own
        asking = [s for s in scopes if s not in state.models]
        versions = {r.scope: r.version for chunk in chunks(asking)
                    for r in conn.execute(_MODEL_VERSIONS, {"keys": chunk})}
        stale = []
        for scope in asking:
            cached = cached_models.get(scope)
            if scope not in versions:
                state.models[scope] = ScopeModels()
            elif cached is not None and cached.version == versions[scope]:
                state.models[scope] = cached
            else:
                stale.append(scope)
        if stale:
            for row in conn.execute(sa.select(t.correlation_models)
                                    .where(t.correlation_models.c.scope.in_(stale))):
                state.models[row.scope] = ScopeModels(
                    templater=Templater.from_snapshot(row.templater),
                    graph=ServiceGraph.from_snapshot(row.graph), version=row.version)

    def load_embeddings(self, conn: sa.Connection) -> None:
        """Template embeddings computed by any process, into this process's cache (once)."""
        if self._embeddings_loaded:
            return
        embedder = default_embedder()
        for row in conn.execute(sa.select(t.template_embeddings.c.text, t.template_embeddings.c.vector)
                                .where(t.template_embeddings.c.model == embedder.name)):
            if len(row.vector) == embedder.dim:
                embedder.put(row.text, row.vector)
                self._embeddings_stored.add(row.text)
        self._embeddings_loaded = True

    def _write_embeddings(self, conn: sa.Connection, now: datetime) -> list[str]:
        embedder = default_embedder()
        if len(embedder) <= len(self._embeddings_stored):
            return []
        rows: list[dict[str, Any]] = [
            {"key": embedding_key(embedder.name, text), "model": embedder.name, "text": text,
             "vector": [float(x) for x in vector], "created_at": now}
            for text, vector in embedder.items() if text not in self._embeddings_stored]
        if rows:
            conn.execute(self._insert(t.template_embeddings).on_conflict_do_nothing(), rows)
        return [r["text"] for r in rows]

    def _write(self, conn: sa.Connection, events: list[Event], decisions: list[Decision],
               state: CorrelationState, received_at: datetime) -> None:
        # The two big inserts (one row per event), the signal upsert (about one per
        # event) and the incident upsert (their profiles are large) bypass SQLAlchemy's
        # per-row parameter processing, which cost more than correlation itself: rows
        # are tuples, JSON is serialized once.
        dialect = conn.dialect
        events_in = self._bulk(dialect, t.events)
        event_rows = [events_in.row(_event_values(e, received_at)) for e in events]
        memberships_in = self._bulk(dialect, t.memberships)
        membership_rows = [memberships_in.row(_membership_values(d, received_at)) for d in decisions]
        signals_in = self._bulk(dialect, t.signals, upsert=True)
        dirty_signals = state.dirty_signals()
        signal_rows = [signals_in.row((s.key, s.incident_id, s.status.value, s.first_seen, s.last_seen, s.count))
                       for s in dirty_signals]
        # A large batch's three per-event writes go by COPY, which cannot run in psycopg's
        # pipeline mode: before it. A small one's are pipelined with the rest (COPY would
        # add two round trips per table where it saves little).
        by_copy = dialect.name == "postgresql" and len(event_rows) >= _COPY_MIN_ROWS
        if by_copy:
            events_in.copy(conn, event_rows)
            memberships_in.copy(conn, membership_rows)
            # Signals the batch read are merged through the staging table; the new ones
            # (most, where every log line differs) cannot conflict and go straight in.
            new = [row for row, s in zip(signal_rows, dirty_signals) if not s.stored]
            self._bulk(dialect, t.signals).copy(conn, new)
            signals_in.copy(conn, [row for row, s in zip(signal_rows, dirty_signals) if s.stored])
        with _pipelined(conn):   # writes only: a select's rows would not be there yet
            if not by_copy:
                events_in.run(conn, event_rows)
                memberships_in.run(conn, membership_rows)
                signals_in.run(conn, signal_rows)
            self._write_state(conn, state, received_at)

    def _write_state(self, conn: sa.Connection, state: CorrelationState, received_at: datetime) -> None:
        """What the batch changed of the incidents and the learned models."""
        dialect = conn.dialect
        dirty = state.dirty_incidents()
        if dirty:
            ins = self._bulk(dialect, t.incidents, upsert=True)
            ins.run(conn, [ins.row(_incident_values(i)) for i in dirty])
            links = [{"incident_id": i.id, "service": s}
                     for i in dirty for s in sorted(i.services - i.linked_services)]
            if links:
                conn.execute(self._add_services, links)
        models = state.dirty_models()
        if models:
            rows = []
            for scope, m in sorted(models.items()):
                m.version += 1
                rows.append({"scope": scope, "version": m.version, "templater": m.templater.snapshot(),
                             "graph": m.graph.snapshot(), "updated_at": received_at})
            conn.execute(self._upsert(t.correlation_models, list(rows[0])), rows)

    def _upsert(self, table: sa.Table, columns: list[str]) -> Any:
        """INSERT ... ON CONFLICT (primary key) DO UPDATE of ``columns``, built once per
        table: building it took longer than running it for a small batch."""
        key = (table.name, tuple(columns))
        stmt = self._upserts.get(key)
        if stmt is None:
            insert = self._insert(table)
            keys = [c.name for c in table.primary_key.columns]
            stmt = self._upserts[key] = insert.on_conflict_do_update(
                index_elements=keys, set_={c: getattr(insert.excluded, c) for c in columns if c not in keys})
        return stmt

    def _bulk(self, dialect: sa.Dialect, table: sa.Table, *, upsert: bool = False) -> _BulkInsert:
        key = (table.name, upsert)
        ins = self._bulk_inserts.get(key)
        if ins is None:
            ins = self._bulk_inserts[key] = _BulkInsert(dialect, table, _BULK_COLUMNS[table.name], upsert=upsert)
        return ins

    # -- reading -----------------------------------------------------------------

    def count_events(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(t.events)) or 0)

    def list_incidents(self, query: IncidentQuery) -> Page:
        cond: list[sa.ColumnElement[bool]] = []
        if query.status:
            cond.append(t.incidents.c.status == query.status)
        if query.kind:
            cond.append(t.incidents.c.kind == query.kind)
        if query.service:
            cond.append(t.incidents.c.id.in_(
                sa.select(t.incident_services.c.incident_id).where(t.incident_services.c.service == query.service)))
        if query.since:
            cond.append(t.incidents.c.last_event_at >= query.since)
        if query.until:
            cond.append(t.incidents.c.opened_at <= query.until)
        where = sa.and_(sa.true(), *cond)
        with self.engine.connect() as conn:
            total = conn.scalar(sa.select(sa.func.count()).select_from(t.incidents).where(where)) or 0
            rows = conn.execute(sa.select(t.incidents).where(where)
                                .order_by(t.incidents.c.opened_at.desc(), t.incidents.c.id)
                                .limit(query.limit).offset(query.offset))
            return Page(items=[_incident_record(r) for r in rows], total=int(total))

    def incident_profiles(self, ids: Iterable[str]) -> list[IncidentProfile]:
        """What the recommender compares incidents by: template centroid, services, title."""
        cols = (t.incidents.c.id, t.incidents.c.title, t.incidents.c.services, t.incidents.c.centroid_f32)
        out = []
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(ids))):
                for r in conn.execute(sa.select(*cols).where(t.incidents.c.id.in_(chunk))):
                    vector = None if r.centroid_f32 is None else np.frombuffer(r.centroid_f32, dtype="<f4")
                    out.append(IncidentProfile(r.id, vector, tuple(r.services), r.title))
        return out

    def get_incident(self, incident_id: str) -> IncidentRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).first()
            return _incident_record(row) if row else None

    def incident_events(self, incident_id: str, *, limit: int = 1000, offset: int = 0) -> list[StoredEvent]:
        j = t.events.join(t.memberships, t.memberships.c.event_id == t.events.c.id)
        stmt = (sa.select(t.events, *_membership_cols()).select_from(j)
                .where(t.memberships.c.incident_id == incident_id)
                .order_by(t.events.c.occurred_at, t.events.c.id).limit(limit).offset(offset))
        with self.engine.connect() as conn:
            return [_stored_event(r) for r in conn.execute(stmt)]

    def get_event(self, event_id: str) -> StoredEvent | None:
        j = t.events.outerjoin(t.memberships, t.memberships.c.event_id == t.events.c.id)
        stmt = sa.select(t.events, *_membership_cols()).select_from(j).where(t.events.c.id == event_id)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
            return _stored_event(row) if row else None

    def all_memberships(self) -> dict[str, str]:
        """event id -> incident id, for comparing runs (tests, eval)."""
        with self.engine.connect() as conn:
            return {r.event_id: r.incident_id for r in conn.execute(
                sa.select(t.memberships.c.event_id, t.memberships.c.incident_id))}

    def noise_stats(self, since: datetime | None = None, until: datetime | None = None) -> NoiseStats:
        e, m, i = t.events, t.memberships, t.incidents
        cond: list[sa.ColumnElement[bool]] = []
        if since:
            cond.append(e.c.occurred_at >= since)
        if until:
            cond.append(e.c.occurred_at < until)

        def bucketed(key: sa.ColumnElement[Any] | None) -> Iterable[sa.Row[Any]]:
            cols: list[Any] = [
                sa.func.count().label("events"),
                sa.func.sum(sa.case((m.c.action == "suppressed", 1), else_=0)).label("suppressed"),
                # A group counts by what it is now: a noise group an alert joined later is
                # an incident, opened by the log or span that opened the group.
                sa.func.sum(sa.case((i.c.kind == IncidentKind.incident.value, 1), else_=0)).label("incidents"),
                sa.func.sum(sa.case((i.c.kind == IncidentKind.noise.value, 1), else_=0)).label("noise_groups"),
                sa.func.sum(sa.case((m.c.notify, 1), else_=0)).label("pages"),
            ]
            opened_group = sa.and_(i.c.id == m.c.incident_id, m.c.action == "opened")
            stmt = sa.select(*([key.label("key")] if key is not None else []), *cols).select_from(
                e.join(m, m.c.event_id == e.c.id).outerjoin(i, opened_group)).where(sa.and_(sa.true(), *cond))
            if key is not None:
                stmt = stmt.group_by(key)
            return conn.execute(stmt).all()

        def bucket(r: sa.Row[Any]) -> NoiseBucket:
            return NoiseBucket(events=int(r.events or 0), suppressed=int(r.suppressed or 0),
                               incidents=int(r.incidents or 0), pages=int(r.pages or 0),
                               noise_groups=int(r.noise_groups or 0))

        with self.engine.connect() as conn:
            total = bucket(list(bucketed(None))[0])
            by_source = {r.key: bucket(r) for r in bucketed(e.c.source)}
            by_service = {(r.key or "(none)"): bucket(r) for r in bucketed(e.c.service)}
        return NoiseStats(total=total, by_source=by_source, by_service=by_service)


# -- row <-> record ------------------------------------------------------------------

# Column order of the tuples the bulk inserts take (see ``_BulkInsert``).
_EVENT_COLUMNS = ("id", "kind", "source", "occurred_at", "received_at", "service", "host", "severity",
                  "status", "title", "fingerprint", "document")
_MEMBERSHIP_COLUMNS = ("event_id", "incident_id", "action", "rule", "evidence", "parameters_version",
                       "notify", "decided_at", "template_id")
_SIGNAL_COLUMNS = ("key", "incident_id", "status", "first_seen", "last_seen", "count")
# What ``incident_row`` writes: every column but ``merged_into``, which only a merge sets.
_INCIDENT_COLUMNS = tuple(c.name for c in t.incidents.columns if c.name != "merged_into")
_INCIDENT_JSON = frozenset(c.name for c in t.incidents.columns if isinstance(c.type, sa.JSON))
_BULK_COLUMNS = {"events": _EVENT_COLUMNS, "memberships": _MEMBERSHIP_COLUMNS, "signals": _SIGNAL_COLUMNS,
                 "incidents": _INCIDENT_COLUMNS}


def _event_values(e: Event, received_at: Any) -> tuple[Any, ...]:
    return (e.id, e.kind.value, e.source, e.occurred_at, received_at, e.service, e.host, e.severity.value,
            e.status.value, e.title, e.fingerprint, _document(e))


def _document(e: Event) -> str:
    """The whole validated event as JSON, serialized by pydantic in one step (model_dump +
    json.dumps built the same JSON through a dict, at over twice the cost). pydantic
    writes NaN and infinities as null, which the model would refuse when the document is
    read back, so an event that may hold one (a float label, or a raw payload) keeps the
    old path, which writes them as Python's json does."""
    if e.raw is None and all(type(v) is not float or math.isfinite(v) for v in e.labels.values()):
        return e.model_dump_json()
    return json.dumps(e.model_dump(mode="json"))


def _incident_values(i: IncidentState) -> tuple[Any, ...]:
    row = incident_row(i)
    return tuple(json_dumps(row[c]) if c in _INCIDENT_JSON else row[c] for c in _INCIDENT_COLUMNS)


def _membership_values(d: Decision, decided_at: Any) -> tuple[Any, ...]:
    evidence = d.evidence
    # (str() of a str enum is its text, a tenth of the cost of ``.value``, a Python property)
    return (d.event_id, d.incident_id, str(d.action), str(d.rule), json_dumps(evidence.as_json()),
            d.parameters_version, d.notify, decided_at, evidence.template)


# From this many events a batch's inserts go by COPY on PostgreSQL (see ``_write``).
_COPY_MIN_ROWS = 100


class _BulkInsert:
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
            self._copy_types = _binary_copy_types(dialect, table, columns)
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


def _binary_copy_types(dialect: sa.Dialect, table: sa.Table, columns: Sequence[str]) -> list[str] | None:
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


def _membership_cols() -> list[sa.ColumnElement[Any]]:
    m = t.memberships
    return [m.c.incident_id, m.c.action, m.c.rule, m.c.evidence, m.c.parameters_version,
            m.c.notify, m.c.decided_at]


def _stored_event(r: sa.Row[Any]) -> StoredEvent:
    membership = None
    if r.incident_id is not None:
        membership = Membership(event_id=r.id, incident_id=r.incident_id, action=Action(r.action),
                                rule=rule_of(r.rule), evidence=evidence_from_json(r.rule, r.evidence),
                                parameters_version=r.parameters_version,
                                notify=bool(r.notify), decided_at=r.decided_at)
    return StoredEvent(event=Event.model_validate(r.document, context=AS_STORED), received_at=r.received_at,
                       membership=membership)


@contextmanager
def _pipelined(conn: sa.Connection) -> Iterator[None]:
    """On PostgreSQL, send the batch's writes without waiting for each answer (psycopg's
    pipeline mode): one round trip for all of them instead of one each."""
    if conn.dialect.name != "postgresql":
        yield
        return
    with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
        yield


def _accepting_since(incident: IncidentState, since: datetime) -> bool:
    return incident.accepting_until is not None and incident.accepting_until >= since


def incident_row(i: IncidentState) -> dict[str, Any]:
    return {
        "id": i.id, "scope": i.scope, "title": i.title, "status": i.status.value, "severity": i.severity.value,
        "opened_at": i.opened_at, "last_event_at": i.last_event_at, "resolved_at": i.resolved_at,
        "last_notified_at": i.last_notified_at, "event_count": i.event_count,
        "alert_count": i.alert_count, "suppressed_count": i.suppressed_count,
        "services": sorted(i.services), "firing": sorted(i.firing),
        "kind": i.kind.value, "accepting_until": i.accepting_until, "page_due_at": i.page_due_at,
        "transient": i.transient, "profile": i.profile(),
        "centroid_f32": None if i.centroid is None else np.asarray(i.centroid, dtype="<f4").tobytes(),
    }


def incident_state(r: sa.Row[Any]) -> IncidentState:
    incident = IncidentState(
        id=r.id, scope=r.scope, title=r.title, opened_at=r.opened_at, last_event_at=r.last_event_at,
        severity=Severity(r.severity), status=IncidentStatus(r.status), resolved_at=r.resolved_at,
        services=set(r.services), firing=set(r.firing), event_count=r.event_count,
        alert_count=r.alert_count, suppressed_count=r.suppressed_count, last_notified_at=r.last_notified_at,
        kind=IncidentKind(r.kind or IncidentKind.incident), accepting_until=r.accepting_until, page_due_at=r.page_due_at,
        transient=bool(r.transient),
        centroid=None if r.centroid_f32 is None else np.frombuffer(r.centroid_f32, dtype="<f4").tolist())
    incident.set_profile(r.profile)
    incident.linked_services = set(incident.services)   # written with the row, in one transaction
    return incident


def embedding_key(model: str, text: str) -> str:
    return hashlib.blake2b(f"{model}\x00{text}".encode(), digest_size=16).hexdigest()


def _incident_record(r: sa.Row[Any]) -> IncidentRecord:
    return IncidentRecord(
        id=r.id, scope=r.scope, title=r.title, status=IncidentStatus(r.status), severity=r.severity,
        opened_at=r.opened_at, last_event_at=r.last_event_at, resolved_at=r.resolved_at,
        last_notified_at=r.last_notified_at, event_count=r.event_count, alert_count=r.alert_count,
        suppressed_count=r.suppressed_count, services=list(r.services), firing_alerts=len(r.firing),
        kind=IncidentKind(r.kind or IncidentKind.incident), transient=bool(r.transient), merged_into=r.merged_into)
