"""A batch's unit of work: one transaction, in the steps its caller runs it in.

    with store.batch(events) as batch:     # begin: lock the batch's scopes (in key order),
                                           #   read which ids are stored, the events' signals
                                           #   and the newest parameters version
        batch.new                          # the events not stored yet: the ones to decide
        state = batch.load_state(kept)     # the state slice they can touch
        batch.load_embeddings(embedder)
        ...                                # the caller decides (the correlator)
        batch.write(decisions, state)      # events, memberships, signals, incidents, models
        batch.write_embeddings(embedder)
        ...                                # the caller's own writes on batch.conn (the outbox)
                                           # commit; any exception rolls everything back

The store never calls back into its caller: the pipeline (``triage.services.pipeline``)
runs these steps top-down and decides between them. A crash anywhere before the commit
leaves nothing behind; a redelivered batch finds its events stored (``new`` is empty)
and changes nothing. What a batch reads is what it could not keep from the last one:
``Kept`` names what its caller holds as current (``triage.services.scope_cache`` decides
what is current), and ``load_state`` reads the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from triage.correlation import CorrelationState, Decision, IncidentState, SignalState, dedup_key
from triage.correlation.decision import Action
from triage.correlation.evidence import Resolve
from triage.correlation.holds import AlertHistory
from triage.correlation.state import ScopeModels
from triage.correlation.templating import Templater
from triage.domain.event import Event, Status
from triage.domain.scope import scope_of
from triage.domain.wire import Prepared
from triage.models.embedder import Embedder
from triage.models.topology import ServiceGraph
from triage.store import schema as t
from triage.store.bulk import (
    BULK_COLUMNS, COPY_MIN_ROWS, BulkInsert, event_values, incident_values, membership_values, pipelined,
)
from triage.store.driver import BatchReads, Opening
from triage.store.embeddings import StoredEmbeddings
from triage.store.engine import chunks, ingest_transaction
from triage.store.records import BatchResult
from triage.store.rows import incident_state

# ``scope IN (:keys)``, the list bound at execution: built once, since building a
# statement (and its cache key) cost more than running it.
_MODEL_VERSIONS = sa.select(t.correlation_models.c.scope, t.correlation_models.c.version) \
    .where(t.correlation_models.c.scope.in_(sa.bindparam("keys", expanding=True)))


@dataclass
class Kept:
    """What the caller already holds of the batch's scopes, as its own last commit left them,
    for ``load_state`` to use instead of reading it again."""

    # scope -> every incident of the scope still accepting events at or after the batch's
    # earliest event, in id order (what the store would read): current
    incidents: dict[str, list[IncidentState]] = field(default_factory=dict)
    # scope -> its learned models: current
    models: dict[str, ScopeModels] = field(default_factory=dict)
    # scope -> learned models, current if the store's row still has their version
    models_if_unchanged: dict[str, ScopeModels] = field(default_factory=dict)


class BatchStatements:
    """What every batch of one store shares, built once per store: the opening statements
    (``triage.store.driver``), the bulk inserts and upserts, and per embedder which
    template embeddings the store holds."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.dialect = dialect
        self.opening = BatchReads(dialect)
        self._insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        self.add_services = self._insert(t.incident_services).on_conflict_do_nothing()
        self._bulk: dict[tuple[str, bool], BulkInsert] = {}
        self._upserts: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._embeddings: dict[int, StoredEmbeddings] = {}   # by id of the embedder, which each holds

    def bulk(self, table: sa.Table, *, upsert: bool = False) -> BulkInsert:
        key = (table.name, upsert)
        ins = self._bulk.get(key)
        if ins is None:
            ins = self._bulk[key] = BulkInsert(self.dialect, table, BULK_COLUMNS[table.name], upsert=upsert)
        return ins

    def event_rows(self, events: Sequence[Event], received_at: datetime,
                   documents: dict[str, str]) -> dict[str, tuple[Any, ...]]:
        """By event id, its ``events`` row, bound (``SqlStore.event_rows``)."""
        events_in = self.bulk(t.events)
        return {e.id: events_in.row(event_values(e, received_at, documents.get(e.id))) for e in events}

    def upsert(self, table: sa.Table, columns: list[str]) -> Any:
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

    def embeddings(self, embedder: Embedder) -> StoredEmbeddings:
        found = self._embeddings.get(id(embedder))
        if found is None or found.embedder is not embedder:
            found = self._embeddings[id(embedder)] = StoredEmbeddings(embedder, self.dialect)
        return found


@contextmanager
def unit_of_work(engine: sa.Engine, statements: BatchStatements, events: Sequence[Event], *,
                 received_at: datetime | None = None, prepared: Prepared | None = None) -> Iterator["UnitOfWork"]:
    """The batch's transaction (``SqlStore.batch``), opened with the batch's first
    statements: its scopes locked and bumped, its stored ids, signals and the newest
    parameters version read (one round trip on PostgreSQL). Failures are sorted as
    ``ingest_transaction`` sorts them."""
    received_at = received_at or (prepared.received_at if prepared is not None else None) \
        or datetime.now(timezone.utc)
    unique = list({e.id: e for e in events}.values())
    known = prepared.dedup_keys if prepared is not None else {}
    keys = {e.id: known.get(e.id) or dedup_key(e) for e in unique}
    # rows bound beforehand hold their batch's receipt: used only for that receipt
    rows = prepared.event_rows if prepared is not None and received_at == prepared.received_at else {}
    with ingest_transaction(engine) as conn:
        opening = (statements.opening.opening(conn, sorted({scope_of(e) for e in unique}), list(keys),
                                              sorted(set(keys.values())))
                   if unique else Opening({}, set(), [], 0))
        work = UnitOfWork(conn, statements, received=len(events), events=unique, keys=keys, opening=opening,
                          received_at=received_at, documents=prepared.documents if prepared is not None else {},
                          event_rows=rows)
        yield work
    work._committed()


class UnitOfWork:
    """One batch's transaction, open (see the module's docstring)."""

    def __init__(self, conn: sa.Connection, statements: BatchStatements, *, received: int, events: list[Event],
                 keys: dict[str, str], opening: Opening, received_at: datetime,
                 documents: dict[str, str] | None = None, event_rows: dict[str, tuple[Any, ...]] | None = None) -> None:
        self.conn = conn
        self.received = received          # events handed in, repeats included
        self.received_at = received_at
        self.new = [e for e in events if e.id not in opening.stored]
        self.earliest: datetime | None = min((e.occurred_at for e in self.new), default=None)
        self._statements = statements
        self._keys = keys
        self._documents = documents or {}   # event id -> its stored document, made beforehand
        self._event_rows = event_rows or {}  # event id -> its bound events row, made beforehand
        self._opening = opening
        self._written: CorrelationState | None = None
        self._embedded: list[tuple[StoredEmbeddings, list[str]]] = []

    @property
    def revisions(self) -> dict[str, int]:
        """Each scope's revision after this batch's bump."""
        return self._opening.revisions

    @property
    def newest_parameters(self) -> int:
        """The newest parameters version, read after the scopes' locks were taken."""
        return self._opening.newest_parameters

    # -- reading -------------------------------------------------------------------

    def load_state(self, kept: Kept) -> CorrelationState:
        """The state the new events can touch: their signals (read when the batch opened),
        the incidents still accepting events in their scopes (and those the signals name),
        the scopes' learned models; ``kept``'s instead of the store's where it has them."""
        if self.earliest is None:
            raise ValueError("no new events: nothing to load the state for")
        conn, earliest = self.conn, self.earliest
        state = CorrelationState()
        scopes = sorted(self.revisions)
        state.dedup_keys = {e.id: self._keys[e.id] for e in self.new}
        wanted_keys = set(state.dedup_keys.values())
        for key, incident_id, status, first_seen, last_seen, count in self._opening.signals:
            if key in wanted_keys:
                state.signals[key] = SignalState(key=key, incident_id=incident_id, status=Status(status),
                                                 first_seen=first_seen, last_seen=last_seen, count=count,
                                                 stored=True)
        stale = []
        for scope in scopes:
            held = kept.incidents.get(scope)
            if held is None:
                stale.append(scope)
                continue
            for incident in held:
                state.add_incident(incident)
        _add_incidents(conn, state, [sa.and_(t.incidents.c.scope.in_(chunk), t.incidents.c.accepting_until >= earliest)
                                     for chunk in chunks(stale)])
        named = sorted({s.incident_id for s in state.signals.values()} - set(state.incidents))
        _add_incidents(conn, state, [t.incidents.c.id.in_(chunk) for chunk in chunks(named)])
        self._load_models(scopes, state, kept)
        return state

    def _load_models(self, scopes: list[str], state: CorrelationState, kept: Kept) -> None:
        """The scopes' learned models: ``kept``'s current ones (no question asked), else its
        others whose version the store's row still has, else the row's."""
        for scope in scopes:
            if scope in kept.models:
                state.models[scope] = kept.models[scope]
        asking = [s for s in scopes if s not in state.models]
        versions = {r.scope: r.version for chunk in chunks(asking)
                    for r in self.conn.execute(_MODEL_VERSIONS, {"keys": chunk})}
        stale = []
        for scope in asking:
            cached = kept.models_if_unchanged.get(scope)
            if scope not in versions:
                state.models[scope] = ScopeModels()
            elif cached is not None and cached.version == versions[scope]:
                state.models[scope] = cached
            else:
                stale.append(scope)
        if stale:
            for row in self.conn.execute(sa.select(t.correlation_models)
                                         .where(t.correlation_models.c.scope.in_(stale))):
                state.models[row.scope] = ScopeModels(
                    templater=Templater.from_snapshot(row.templater),
                    graph=ServiceGraph.from_snapshot(row.graph), version=row.version,
                    history=AlertHistory.from_snapshot(row.alert_history))

    def load_embeddings(self, embedder: Embedder) -> None:
        """Template vectors computed by any process, into ``embedder``'s cache (once per store)."""
        self._statements.embeddings(embedder).load(self.conn)

    # -- writing -------------------------------------------------------------------

    def write(self, decisions: list[Decision], state: CorrelationState) -> None:
        """The new events, their decisions (memberships), and what the decisions changed:
        signals, incidents (and their service links), learned models."""
        # The two big inserts (one row per event), the signal upsert (about one per
        # event) and the incident upsert (their profiles are large) bypass SQLAlchemy's
        # per-row parameter processing, which cost more than correlation itself: rows
        # are tuples, JSON is serialized once.
        conn, statements, received_at = self.conn, self._statements, self.received_at
        events_in = statements.bulk(t.events)
        documents, made = self._documents, self._event_rows
        event_rows = [made.get(e.id) or events_in.row(event_values(e, received_at, documents.get(e.id)))
                      for e in self.new]
        memberships_in = statements.bulk(t.memberships)
        membership_rows = [memberships_in.row(membership_values(d, received_at)) for d in decisions]
        signals_in = statements.bulk(t.signals, upsert=True)
        dirty_signals = state.dirty_signals()
        signal_rows = [signals_in.row((s.key, s.incident_id, s.status.value, s.first_seen, s.last_seen, s.count))
                       for s in dirty_signals]
        # A large batch's three per-event writes go by COPY, which cannot run in psycopg's
        # pipeline mode: before it. A small one's are pipelined with the rest (COPY would
        # add two round trips per table where it saves little).
        by_copy = conn.dialect.name == "postgresql" and len(event_rows) >= COPY_MIN_ROWS
        if by_copy:
            events_in.copy(conn, event_rows)
            memberships_in.copy(conn, membership_rows)
            # Signals the batch read are merged through the staging table; the new ones
            # (most, where every log line differs) cannot conflict and go straight in.
            new = [row for row, s in zip(signal_rows, dirty_signals) if not s.stored]
            statements.bulk(t.signals).copy(conn, new)
            signals_in.copy(conn, [row for row, s in zip(signal_rows, dirty_signals) if s.stored])
        with pipelined(conn):   # writes only: a select's rows would not be there yet
            if not by_copy:
                events_in.run(conn, event_rows)
                memberships_in.run(conn, membership_rows)
                signals_in.run(conn, signal_rows)
            self._write_state(state)
        self._written = state

    def _write_state(self, state: CorrelationState) -> None:
        """What the batch changed of the incidents and the learned models."""
        conn, statements = self.conn, self._statements
        dirty = state.dirty_incidents()
        if dirty:
            ins = statements.bulk(t.incidents, upsert=True)
            ins.run(conn, [ins.row(incident_values(i)) for i in dirty])
            links = [{"incident_id": i.id, "service": s}
                     for i in dirty for s in sorted(i.services - i.linked_services)]
            if links:
                conn.execute(statements.add_services, links)
        models = state.dirty_models()
        if models:
            rows = []
            for scope, m in sorted(models.items()):
                m.version += 1
                rows.append({"scope": scope, "version": m.version, "templater": m.templater.snapshot(),
                             "graph": m.graph.snapshot(), "updated_at": self.received_at,
                             "alert_history": m.history.snapshot()})
            conn.execute(statements.upsert(t.correlation_models, list(rows[0])), rows)

    def write_embeddings(self, embedder: Embedder) -> None:
        """The template vectors ``embedder`` computed that the store does not hold yet."""
        stored = self._statements.embeddings(embedder)
        self._embedded.append((stored, stored.write(self.conn, self.received_at)))

    def result(self, decisions: list[Decision]) -> BatchResult:
        actions = Counter(d.action for d in decisions)
        return BatchResult(
            received=self.received, stored=len(self.new), suppressed=actions[Action.suppressed],
            attached=actions[Action.attached], opened=actions[Action.opened],
            notified=sum(d.notify for d in decisions), incidents_opened=sum(d.opens_incident for d in decisions),
            noise_groups_opened=sum(d.opens_noise_group for d in decisions),
            # A decision that opens an incident and pages nobody yet: its first page waits
            # for auto_pause (without it, the first alert's page is due at once).
            pages_held=sum(d.opens_incident and not d.notify for d in decisions),
            pages_transient=sum(isinstance(d.evidence, Resolve) and d.evidence.transient for d in decisions),
        )

    def _committed(self) -> None:
        """After the commit: what was written is now the store's, no longer dirty."""
        if self._written is not None:
            self._written.clear_dirty()
        for stored, texts in self._embedded:
            stored.saved(texts)


def _add_incidents(conn: sa.Connection, state: CorrelationState, wanted: list[sa.ColumnElement[bool]]) -> None:
    for cond in wanted:
        for row in conn.execute(sa.select(t.incidents).where(cond).order_by(t.incidents.c.id)):
            if row.id not in state.incidents:
                state.add_incident(incident_state(row))
