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

import sqlalchemy as sa

log = logging.getLogger(__name__)

# The in-commit checkpoint stays as a bound on the log's size (64 MiB of 4 KiB pages),
# should the background thread fall behind or stop.
SAFETY_NET_PAGES = 16_384


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
