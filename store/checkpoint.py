"""SQLite's WAL checkpoints, taken off the committing thread.

By default SQLite checkpoints inside the commit that grows the write-ahead log past 1,000
pages: that commit copies the log into the database file and fsyncs it. At 1,000
events/s in batches of about ten, one commit in twenty-five did so and took 5-8 ms
instead of 0.2, a tail every event of that batch waited through (docs/benchmarks.md,
"Why the hot path is built as it is"). Here a thread of the store checkpoints in the
background (PASSIVE: it never blocks the writer or a reader), and the commit's own
checkpoint is left as a safety net for a log that grows past ``SAFETY_NET_PAGES`` anyway.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

# The in-commit checkpoint stays as a bound on the log's size (64 MiB of 4 KiB pages),
# should the background thread fall behind or stop.
SAFETY_NET_PAGES = 16_384

# Where the writer is another process than the checkpointer's, it checkpoints in its own
# commits from this size of log on, SQLite's default (``rewind_in_commits``).
REWIND_PAGES = 1_000


def rewind_in_commits(engine: sa.Engine) -> None:
    """For a store that writes a file whose log another process's store checkpoints (the
    correlating process of ``TRIAGE_CORRELATOR_PROCESS``): its commits checkpoint from
    ``REWIND_PAGES`` on, not only at the safety net.

    The log goes back to its start only when a writer begins a transaction with every
    frame of it copied into the file. A writer in the checkpointer's own process leaves
    gaps between its transactions (it fetches and decodes there); the correlating
    process goes from one batch's transaction to the next, so the background thread's
    passive checkpoints copied the log but it was never rewound: it grew to the safety
    net (64 MiB in a 60 s latency run), every read slowing as it grew, and then a commit
    copied it whole. Its own checkpoint, in the commit, copies what the thread has not
    yet (a few pages), and its next transaction starts the log again
    (docs/benchmarks.md, "Latency at 1,000 events/s over 60 s")."""

    @sa.event.listens_for(engine, "connect")
    def _rewind(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA wal_autocheckpoint={REWIND_PAGES}")
        cur.close()

    engine.dispose()   # the connections opened before (the migration's) have the safety net


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection every ``interval_s``
    until ``stop()``."""

    def __init__(self, engine: sa.Engine, interval_s: float = 0.2) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="triage-wal-checkpoint", daemon=True)

    def start(self) -> "WalCheckpointer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint: (busy, pages in the log, pages copied), as SQLite reports."""
        # The driver's connection, outside any transaction: SQLAlchemy would begin one,
        # and a checkpoint cannot run inside a transaction that has read.
        conn = self._engine.raw_connection()
        try:
            cur = conn.cursor()
            row = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            cur.close()
        finally:
            conn.close()
        return int(row[0]), int(row[1]), int(row[2])

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                self.checkpoint()
            except Exception:  # noqa: BLE001 - a failed checkpoint is retried next round
                log.warning("background WAL checkpoint failed; the next one will retry", exc_info=True)
