"""Why the store's writes are not moved to a thread beside the consumer (docs/benchmarks.md,
"Limits").

    python tools/gil_convoy.py [--rows 2000] [--runs 2]

Inserts --rows rows of 400 bytes into a fresh SQLite file with ``executemany`` and commits,
first alone, then while another thread runs pure Python (as a consumer decoding the next
batch would), and prints the milliseconds of each run. sqlite3 releases the interpreter
lock around every row's step and must take it back before the next row; beside a busy
thread each take waits for that thread's switch interval.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
from pathlib import Path


def insert_ms(conn: sqlite3.Connection, batch: int, rows: int) -> float:
    values = [(f"{batch}-{i}", "x" * 400) for i in range(rows)]
    started = time.perf_counter()
    conn.executemany("INSERT INTO t VALUES (?, ?)", values)
    conn.commit()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "convoy.db", check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
        batch = 0
        for _ in range(args.runs):
            batch += 1
            print(f"alone: {insert_ms(conn, batch, args.rows):.1f} ms")
        stop = threading.Event()

        def busy() -> None:
            while not stop.is_set():
                sum(range(1000))

        thread = threading.Thread(target=busy)
        thread.start()
        try:
            for _ in range(args.runs):
                batch += 1
                print(f"beside a busy Python thread: {insert_ms(conn, batch, args.rows):.1f} ms")
        finally:
            stop.set()
            thread.join()
        conn.close()


if __name__ == "__main__":
    main()
