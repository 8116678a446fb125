"""Template embeddings in the store: one row per (model, template text).

A vector is a pure function of its text (rounded, so two processes compute the same
bits), so rows are only ever inserted, by whichever process embedded the text first,
and every process reads them all once: a text any process has embedded never goes to
the model again. The embedder is the caller's (one per process, built at start-up);
``StoredEmbeddings`` keeps, for one embedder and one store, which of its texts the store
holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from triage.models.embedder import Embedder
from triage.store import schema as t
from triage.store.engine import chunks


def embedding_key(model: str, text: str) -> str:
    return hashlib.blake2b(f"{model}\x00{text}".encode(), digest_size=16).hexdigest()


def stored_vectors(conn: sa.Connection, texts: Iterable[str], model: str) -> dict[str, list[float]]:
    """The stored embeddings of ``texts`` under ``model`` (those that have one)."""
    keys = {embedding_key(model, text): text for text in texts}
    e = t.template_embeddings
    out: dict[str, list[float]] = {}
    for chunk in chunks(sorted(keys)):
        for row in conn.execute(sa.select(e.c.key, e.c.vector).where(e.c.key.in_(chunk))):
            out[keys[row.key]] = list(row.vector)
    return out


class StoredEmbeddings:
    """One embedder's vectors and the store's rows of them: ``load`` puts every stored
    vector of the embedder's model into its cache (once), ``write`` inserts the vectors
    it computed since, and ``saved`` records them once their transaction has committed."""

    def __init__(self, embedder: Embedder, dialect: sa.Dialect) -> None:
        self.embedder = embedder
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        self._insert = insert(t.template_embeddings).on_conflict_do_nothing()
        self._loaded = False
        self._stored: set[str] = set()

    def load(self, conn: sa.Connection) -> None:
        """Vectors computed by any process, into the embedder's cache (the first time only)."""
        if self._loaded:
            return
        embedder = self.embedder
        for row in conn.execute(sa.select(t.template_embeddings.c.text, t.template_embeddings.c.vector)
                                .where(t.template_embeddings.c.model == embedder.name)):
            if len(row.vector) == embedder.dim:
                embedder.put(row.text, row.vector)
                self._stored.add(row.text)
        self._loaded = True

    def write(self, conn: sa.Connection, now: datetime) -> list[str]:
        """Insert the vectors the embedder holds and the store does not (in ``conn``'s
        transaction); returns their texts, for ``saved`` after the commit."""
        embedder = self.embedder
        if len(embedder) <= len(self._stored):
            return []
        rows: list[dict[str, Any]] = [
            {"key": embedding_key(embedder.name, text), "model": embedder.name, "text": text,
             "vector": [float(x) for x in vector], "created_at": now}
            for text, vector in embedder.items() if text not in self._stored]
        if rows:
            conn.execute(self._insert, rows)
        return [r["text"] for r in rows]

    def saved(self, texts: Iterable[str]) -> None:
        self._stored.update(texts)
