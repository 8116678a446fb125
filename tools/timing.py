"""Run a triage command with every SQLAlchemy driver call timed: commits, single
statements and ``executemany``s, reported at exit (count, total, p50/p99/p999, max, and
how many took over 5 ms). A diagnostic for where a batch's tail comes from:

    python tools/timing.py bench --events 20000 --rate 1000 --json

``AB_OFF=1`` puts SQLite's own checkpointing back (inside the commit that grows the log
past 1,000 pages) in place of the store's background thread, for A/B runs
(docs/benchmarks.md, "Why the hot path is built as it is").
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from collections import defaultdict
from typing import Any

import sqlalchemy.engine.default as default

_TIMES: dict[str, list[float]] = defaultdict(list)


def _timed(name: str) -> None:
    original = getattr(default.DefaultDialect, name)

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            _TIMES[name].append((time.perf_counter() - start) * 1000)
    setattr(default.DefaultDialect, name, call)


def _report() -> None:
    for name, times in _TIMES.items():
        times.sort()

        def q(p: float) -> float:
            return times[min(len(times) - 1, int(p * len(times)))]
        slow = [t for t in times if t > 5]
        print(f"{name:16} n={len(times):6} sum={sum(times) / 1000:6.2f}s p50={q(.5):.3f} p99={q(.99):.3f} "
              f"p999={q(.999):.3f} max={times[-1]:.2f} ms; over 5 ms: {len(slow)}", file=sys.stderr)


if __name__ == "__main__":   # the bench's producer process imports this module too
    for name in ("do_commit", "do_execute", "do_executemany"):
        _timed(name)
    if os.environ.get("AB_OFF"):
        import triage.store.sql as sql

        class _NoCheckpointer:
            def __init__(self, *args: Any) -> None:
                pass

            def start(self) -> None:
                return None
        sql.SAFETY_NET_PAGES = 1000   # SQLite's default
        sql.WalCheckpointer = _NoCheckpointer  # type: ignore[misc,assignment]
    atexit.register(_report)
    from triage.cli import main
    sys.argv = ["triage", *sys.argv[1:]]
    main()
