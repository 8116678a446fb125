"""SQLite's WAL is checkpointed by the store's background thread, not inside commits."""

from __future__ import annotations

import sqlite3
from contextlib import closing
import time
from pathlib import Path

from tests.conftest import EMBEDDER, make_event
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store.checkpoint import REWIND_PAGES, SAFETY_NET_PAGES


def _events_in_database_file(path: Path) -> int:
    """Rows the database file itself holds, ignoring the log: what checkpoints copied
    (-1 before the table itself is copied, or while a checkpoint is copying pages: the
    file is read without SQLite's locks, so a read can land between two pages)."""
    with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.DatabaseError:   # no such table yet, or "malformed": a torn read
            return -1


def _wait_for(path: Path, count: int) -> int:
    deadline = time.monotonic() + 10
    while (found := _events_in_database_file(path)) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_the_log_reaches_the_database_file_without_a_commit_checkpointing(tmp_path: Path) -> None:
    path = tmp_path / "triage.db"
    store = SqlStore.from_url(f"sqlite:///{path}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == SAFETY_NET_PAGES
        # The schema, then a batch: a few pages each, far below the commit's own
        # threshold, so only the thread copies them into the file.
        assert _wait_for(path, 0) == 0
        Pipeline(store, EMBEDDER)([make_event(i, id=f"w{i}", fingerprint=f"f{i}") for i in range(50)])
        assert _wait_for(path, 50) == 50
    finally:
        store.close()
    assert store._checkpointer is not None and not store._checkpointer.running


def test_an_in_memory_database_has_no_checkpointer() -> None:
    store = SqlStore.from_url("sqlite://")
    try:
        assert store._checkpointer is None   # no log to checkpoint
        assert store.count_events() == 0
    finally:
        store.close()


def test_a_store_of_the_file_checkpoints_what_another_stores(tmp_path: Path) -> None:
    """The correlating process's store (``checkpoints=False``) leaves the log to the
    fetching process's store of the same file."""
    path = tmp_path / "triage.db"
    checkpointing = SqlStore.from_url(f"sqlite:///{path}")
    writing = SqlStore.from_url(f"sqlite:///{path}", checkpoints=False)
    try:
        assert writing._checkpointer is None
        Pipeline(writing, EMBEDDER)([make_event(i, id=f"w{i}", fingerprint=f"f{i}") for i in range(50)])
        assert _wait_for(path, 50) == 50
    finally:
        writing.close()
        checkpointing.close()


def test_a_store_that_leaves_checkpoints_to_another_still_rewinds_the_log(tmp_path: Path) -> None:
    """A writer that goes from one transaction to the next (the correlating process)
    would never find the log wholly copied when it begins, so the log would not start
    over and would grow to the safety net: its own commits checkpoint past REWIND_PAGES."""
    path = tmp_path / "triage.db"
    writing = SqlStore.from_url(f"sqlite:///{path}", checkpoints=False)   # and no other store checkpoints
    try:
        with writing.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == REWIND_PAGES
        with writing.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE filler (x BLOB)")
        page = bytes(4096)
        for _ in range(40):   # 40 transactions of 100 pages: 4,000 pages written
            with writing.engine.begin() as conn:
                conn.exec_driver_sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
                                     "INSERT INTO filler SELECT ? FROM n", (page,))
        log_pages = (path.parent / (path.name + "-wal")).stat().st_size // 4096
        assert 0 < log_pages < 2 * REWIND_PAGES < SAFETY_NET_PAGES
    finally:
        writing.close()
