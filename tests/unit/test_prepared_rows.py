"""Events rows bound in the fetching process (``Prepared.event_rows``) store what the
correlating process would have stored binding them itself."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import EMBEDDER, make_event
from triage.correlation.identity import dedup_key
from triage.domain.wire import Prepared
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store import schema as t
from triage.store.batch import Kept
from triage.store.bulk import document_json

RECEIVED = datetime(2026, 3, 11, 9, 30, 0, 250000, tzinfo=timezone.utc)


def _stored(tmp_path: Path, name: str, prepare: bool) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / name}")
    events = [make_event(0, id="a", fingerprint="f"), make_event(5, id="b", fingerprint="f"),
              make_event(9, id="c", kind="log", title="disk 93% full", fingerprint=None)]
    documents = {e.id: document_json(e) for e in events}
    if prepare:
        prepared = Prepared({e.id: dedup_key(e) for e in events}, {}, {}, {},
                            store.event_rows(events, RECEIVED, documents), RECEIVED)
    else:
        prepared = Prepared({e.id: dedup_key(e) for e in events}, documents)
    pipeline = Pipeline(store, EMBEDDER)
    if prepare:
        pipeline(events, (), prepared)   # the receipt is the prepared one
    else:
        _run_at(pipeline, store, events, prepared)
    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(t.events).order_by(t.events.c.id))]
        decided = [tuple(r) for r in conn.execute(sa.select(t.memberships).order_by(t.memberships.c.event_id))]
    store.close()
    return rows, decided


def _run_at(pipeline: Pipeline, store: SqlStore, events: list, prepared: Prepared) -> None:
    """The pipeline's batch with the store's receipt fixed to RECEIVED."""
    batch = store.batch
    store.batch = lambda evs, **kw: batch(evs, received_at=RECEIVED, prepared=kw.get("prepared"))  # type: ignore[method-assign]
    try:
        pipeline(events, (), prepared)
    finally:
        store.batch = batch  # type: ignore[method-assign]


def test_rows_bound_beforehand_are_stored_as_the_store_binds_them(tmp_path: Path) -> None:
    assert _stored(tmp_path, "prepared.db", True) == _stored(tmp_path, "plain.db", False)


def test_rows_bound_beforehand_are_what_is_stored_and_only_for_their_receipt(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'other.db'}")
    first, second = make_event(0, id="a"), make_event(1, id="b")
    rows = store.event_rows([first, second], RECEIVED, {})
    marked = {k: (*v[:9], "marked", *v[10:]) for k, v in rows.items()}   # the title column
    Pipeline(store, EMBEDDER)([first], (), Prepared(event_rows=marked, received_at=RECEIVED))
    later = datetime(2026, 3, 11, 10, tzinfo=timezone.utc)
    with store.batch([second], received_at=later, prepared=Prepared(event_rows=marked, received_at=RECEIVED)) as b:
        b.write([], b.load_state(Kept()))
    with store.engine.connect() as conn:
        titles = dict(conn.execute(sa.select(t.events.c.id, t.events.c.title)).all())
    store.close()
    assert titles == {"a": "marked", "b": second.title}
