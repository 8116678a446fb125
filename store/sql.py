"""The store, in SQL that runs on SQLite (embedded default) and PostgreSQL (production).

``SqlStore`` is the one object a process holds: its engine (``triage.store.engine``), the
batch's unit of work (``batch``: ``triage.store.batch``), the API's reads (``SqlReads``:
``triage.store.reads``), and what merges, splits and the held-pages ticker need to
write under a scope's lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from triage.domain.event import Event
from triage.domain.wire import Prepared
from triage.models.embedder import Embedder
from triage.store import schema as t
from triage.store.batch import BatchStatements, UnitOfWork, unit_of_work
from triage.store.checkpoint import WalCheckpointer, rewind_in_commits
from triage.store.engine import create_engine, ingest_transaction
from triage.store.reads import SqlReads

# An UPDATE that matches no row: what ``probe`` asks the database to do.
_PROBE = sa.update(t.scopes).where(sa.false()).values(revision=t.scopes.c.revision)


class SqlStore(SqlReads):
    def __init__(self, engine: sa.Engine, *, checkpoints: bool = True) -> None:
        """``checkpoints``: on a SQLite file, checkpoint its write-ahead log from a thread
        of this store (``triage.store.checkpoint``). Off where another process's store of
        the same file does it: the correlating process of ``TRIAGE_CORRELATOR_PROCESS``,
        whose parent's store checkpoints, so that its core does only what must be
        sequential (the checkpoints cost it about 4 µs per event; docs/benchmarks.md). Its
        own commits then checkpoint only what is left past 1,000 pages, which lets the log
        start over (``rewind_in_commits``)."""
        super().__init__(engine)
        self._batches = BatchStatements(engine.dialect)
        on_file = engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")
        self._checkpointer = WalCheckpointer(engine).start() if checkpoints and on_file else None
        if on_file and not checkpoints:
            rewind_in_commits(engine)

    @classmethod
    def from_url(cls, url: str, *, migrate: bool = True, checkpoints: bool = True) -> "SqlStore":
        engine = create_engine(url)
        if migrate:
            from triage.store.migrate import upgrade
            upgrade(engine)
        return cls(engine, checkpoints=checkpoints)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- writing -----------------------------------------------------------------

    def batch(self, events: Sequence[Event], *, received_at: datetime | None = None,
              prepared: Prepared | None = None) -> AbstractContextManager[UnitOfWork]:
        """One batch's unit of work (``triage.store.batch``): its transaction, opened with
        its scopes locked, for the caller to run step by step and commit by leaving it.
        ``prepared``: dedup keys and documents computed beforehand (``triage.domain.wire``)."""
        return unit_of_work(self.engine, self._batches, events, received_at=received_at, prepared=prepared)

    def event_rows(self, events: Sequence[Event], received_at: datetime,
                   documents: dict[str, str] | None = None) -> dict[str, tuple[Any, ...]]:
        """By event id, its ``events`` row as a batch received at ``received_at`` binds it
        (what ``Prepared.event_rows`` carries to another process of the same store)."""
        return self._batches.event_rows(events, received_at, documents or {})

    def probe(self) -> None:
        """Raise (``StoreUnavailable``, usually) unless the store takes writes now: a
        transaction with an UPDATE that matches no row, which a server that is down,
        read-only or out of connections refuses. What tells the consumer an outage from a
        message that fails alone (``BatchConsumer``). Its failures are sorted as a batch's
        are (``triage.store.engine.ingest_transaction``)."""
        with ingest_transaction(self.engine) as conn:
            conn.execute(_PROBE)

    def lock_scopes(self, conn: sa.Connection, keys: Iterable[str]) -> dict[str, int]:
        """Take the scopes' locks for this transaction (in key order, so two writers
        cannot deadlock) and bump their revisions; returns each scope's new revision.
        Whoever writes a scope's incidents must hold its lock; the bump tells every
        pipeline that kept the scope in memory to read it again."""
        return self._batches.opening.bump_scopes(conn, sorted(set(keys)))

    def link_services(self, conn: sa.Connection, incident_id: str, services: Iterable[str]) -> None:
        """Add incident -> service links (``incident_services``) the store does not hold yet."""
        rows = [{"incident_id": incident_id, "service": s} for s in sorted(set(services))]
        if rows:
            conn.execute(self._batches.add_services, rows)

    def load_embeddings(self, conn: sa.Connection, embedder: Embedder) -> None:
        """Template vectors computed by any process, into ``embedder``'s cache (once)."""
        self._batches.embeddings(embedder).load(conn)

