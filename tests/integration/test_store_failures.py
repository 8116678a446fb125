"""The store sorts its failures for the consumer: values it refuses (``RefusedEvents``,
dead-lettered), and a store that cannot take writes (``StoreUnavailable``: retried,
nothing dead-lettered), which ``SqlStore.probe`` also detects when the message is all
there is to store."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import EMBEDDER, make_event
from triage.domain.errors import RefusedEvents, StoreUnavailable
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store.engine import create_engine

pytestmark = pytest.mark.integration


def test_a_store_that_takes_writes_answers_the_probe(store: SqlStore) -> None:
    store.probe()
    Pipeline(store, EMBEDDER)([make_event(0, id="a")])
    store.probe()
    assert store.count_events() == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_database_is_unavailable_not_a_poison() -> None:
    store = SqlStore(create_engine(f"postgresql://postgres@127.0.0.1:{_closed_port()}/test?connect_timeout=2"))
    try:
        with pytest.raises(StoreUnavailable):
            store.probe()
        with pytest.raises(StoreUnavailable):
            Pipeline(store, EMBEDDER)([make_event(0, id="a")])
    finally:
        store.close()


@pytest.mark.postgres
def test_a_read_only_database_answers_a_ping_but_not_the_probe(pg_url: str) -> None:
    SqlStore.from_url(pg_url).close()   # migrated
    sep = "&" if "?" in pg_url else "?"
    store = SqlStore(create_engine(f"{pg_url}{sep}options=-c%20default_transaction_read_only%3Don"))
    try:
        store.ping()   # SELECT 1 works: a ping alone would take it for a healthy store
        with pytest.raises(StoreUnavailable, match="read-only"):
            store.probe()
        with pytest.raises(StoreUnavailable, match="read-only"):
            Pipeline(store, EMBEDDER)([make_event(0, id="a")])
    finally:
        store.close()


@pytest.mark.postgres
def test_a_value_postgresql_refuses_is_refused_not_unavailable(pg_url: str) -> None:
    store = SqlStore.from_url(pg_url)
    try:
        bad = make_event(0, id="nul").model_copy(update={"id": "n\x00"})   # past validation, as if unforeseen
        with pytest.raises(RefusedEvents):
            Pipeline(store, EMBEDDER)([bad])
        store.probe()   # the store itself is fine
    finally:
        store.close()
