"""What an offline replay of a stored window reads: the window's events in time order,
streamed in batches; the calls traces showed; the cached template embeddings (and the
new ones it computed, written back for the next replay and the consumers)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from triage.domain.event import AS_STORED, Event
from triage.models.embedder import Embedder
from triage.store import schema as t
from triage.store.graph import service_edges
from triage.store.embeddings import embedding_key

__all__ = ["StoredInWindow", "cached_embeddings", "count_window", "save_embeddings", "stream_window", "traced_calls"]


@dataclass(frozen=True)
class StoredInWindow:
    event: Event
    incident_id: str | None   # the incident it is in now (after any merge or split); None: not decided


def _window(since: datetime, until: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(t.events.c.occurred_at >= since, t.events.c.occurred_at < until)


def count_window(engine: sa.Engine, since: datetime, until: datetime) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(t.events).where(_window(since, until))) or 0)


def stream_window(engine: sa.Engine, since: datetime, until: datetime,
                  batch: int = 2000) -> Iterator[list[StoredInWindow]]:
    """The events that occurred in [since, until) in (occurred_at, id) order, in batches of
    about ``batch``, each with its incident now. Rows come in the order of the
    ``occurred_at`` index, streamed (never the whole window in memory); a batch is cut
    only between two instants and sorted by id within them, so the order is exact."""
    e, m = t.events, t.memberships
    # The document as text, parsed by pydantic in one step (no dict in between).
    stmt = (sa.select(sa.cast(e.c.document, sa.Text).label("document"), m.c.incident_id)
            .select_from(e.outerjoin(m, m.c.event_id == e.c.id))
            .where(_window(since, until)).order_by(e.c.occurred_at))
    pending: list[StoredInWindow] = []
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
        for document, incident_id in rows:
            event = Event.model_validate_json(document, context=AS_STORED)
            if len(pending) >= batch and event.occurred_at > pending[-1].event.occurred_at:
                yield _ordered(pending)
                pending = []
            pending.append(StoredInWindow(event, incident_id))
    if pending:
        yield _ordered(pending)


def _ordered(batch: list[StoredInWindow]) -> list[StoredInWindow]:
    return sorted(batch, key=lambda s: (s.event.occurred_at, s.event.id))


def traced_calls(engine: sa.Engine, before: datetime) -> list[tuple[datetime, str, str]]:
    """(first seen, caller, callee) of every call the traces showed before ``before``."""
    c = service_edges.c
    with engine.connect() as conn:
        return [(r.first_seen, r.caller, r.callee) for r in conn.execute(
            sa.select(c.first_seen, c.caller, c.callee).where(c.first_seen < before)
            .order_by(c.first_seen, c.caller, c.callee))]


def cached_embeddings(engine: sa.Engine, embedder: Embedder) -> int:
    """Put the stored vectors of ``embedder``'s model into its cache; how many there were."""
    e = t.template_embeddings
    count = 0
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=5000).execute(
            sa.select(e.c.text, e.c.vector).where(e.c.model == embedder.name))
        for text, vector in rows:
            if len(vector) == embedder.dim and embedder.cached(text) is None:
                embedder.put(text, np.asarray(vector, dtype=np.float32))
                count += 1
    return count


def save_embeddings(engine: sa.Engine, embedder: Embedder, texts: Iterable[str]) -> int:
    """Store the vectors of ``texts`` (those the embedder holds) that the table lacks:
    embeddings are a pure function of (model, text), so rows are only ever added."""
    now = datetime.now(timezone.utc)
    rows = []
    for text in dict.fromkeys(texts):
        vector = embedder.cached(text)
        if vector is not None:
            rows.append({"key": embedding_key(embedder.name, text), "model": embedder.name, "text": text,
                         "vector": [float(x) for x in vector], "created_at": now})
    if not rows:
        return 0
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as conn:
        conn.execute(insert(t.template_embeddings).on_conflict_do_nothing(), rows)
    return len(rows)
