"""The correlating process's work alone, in one process, for profiling and CPU per event.

What the child of ``TRIAGE_CORRELATOR_PROCESS=true`` does per batch (``triage.correlator_process``:
unpack, seed the embedder's cache, the pipeline: dedup, state, correlation, writes, commit),
run here over ``triage bench``'s synthetic events, which the parent's side (decode, the
``Prepared`` per event, ``pack_batch``) has packed beforehand, outside the timed part. No
broker and no pipe: the figure is the correlating side's CPU per event, by stage.

    .venv/bin/python tools/correlating_profile.py --events 100000            # CPU per event, by stage
    .venv/bin/python tools/correlating_profile.py --events 100000 --profile prof.out   # and a cProfile
    .venv/bin/python tools/correlating_profile.py --events 30000 --correlator-only     # the correlator alone
    TRIAGE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/triage_bench .venv/bin/python tools/correlating_profile.py
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from triage.correlation.identity import dedup_key
from triage.correlation.templating import premask
from triage.domain.wire import Prepared, pack_batch
from triage.correlation import CorrelationState, Correlator, Decision
from triage.correlator_process import take_batch
from triage.evaluation.bench import _past_stream, synthetic_events
from triage.models.embedder import make_embedder
from triage.store.engine import json_dumps
from triage.ingest.decode import event_from_dict
from triage.service import Runtime, tune_gc
from triage.settings import Settings
from triage.store import schema
from triage.store.bulk import document_json


def _checkpointing(path: str | None) -> subprocess.Popen[bytes]:
    """What the fetching process's store does for the correlating one: checkpoint the
    SQLite log every 0.2 s (``triage.store.checkpoint``), here in a process of its own
    until its standard input closes."""
    code = ("import select, sqlite3, sys\n"
            f"db = sqlite3.connect({path!r}, isolation_level=None)\n"
            "while not select.select([sys.stdin], [], [], 0.2)[0]:\n"
            "    db.execute('PRAGMA wal_checkpoint(PASSIVE)').fetchone()\n")
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)


def _thread_cpu_s() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by its name (Linux ``/proc``)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        name = names.get(int(task.name)) or f"native:{(task / 'comm').read_text().strip()}"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def correlator_only(count: int, unique_share: float, spacing_ms: float) -> None:
    """``Correlator.process_batch`` over the bench's events in batches of 2,000, in memory,
    four runs after one that fills the embedder's cache; prints the CPU µs per event of
    each and a digest of every decision and its evidence (equal digests: equal decisions)."""
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)   # fixed, so that digests compare
    events = [event_from_dict(json.loads(value)) for _, _, value in
              synthetic_events(count, unique_share, start=start, spacing=timedelta(milliseconds=spacing_ms))]
    embedder = make_embedder(Settings().embedder)

    def run() -> tuple[float, list[Decision]]:
        correlator = Correlator(state=CorrelationState(), embedder=embedder)
        decisions: list[Decision] = []
        before = time.process_time()
        for i in range(0, count, 2000):
            decisions += correlator.process_batch(events[i:i + 2000])
        return time.process_time() - before, decisions

    run()
    tune_gc()
    runs = [run() for _ in range(4)]
    digest = hashlib.sha1()
    for d in runs[-1][1]:
        digest.update(f"{d.event_id} {d.incident_id} {d.rule} {json_dumps(d.evidence.as_json())}\n".encode())
    print(json.dumps({"events": count, "correlator_cpu_us_per_event": [round(s / count * 1e6, 1) for s, _ in runs],
                      "decisions_digest": digest.hexdigest()[:16]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--unique-share", type=float, default=0.01)
    parser.add_argument("--spacing-ms", type=float, default=10.0)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the timed part here")
    parser.add_argument("--correlator-only", action="store_true",
                        help="time the correlator alone, in memory (no store), best of four runs")
    args = parser.parse_args()
    if args.correlator_only:
        correlator_only(args.events, args.unique_share, args.spacing_ms)
        return
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="triage-prof-") as tmp:
        if "database_url" not in settings.model_fields_set:
            settings = settings.model_copy(update={"database_url": f"sqlite:///{Path(tmp) / 'prof.db'}"})
        # As the correlating process's store: the log checkpointed by another store of
        # the file (the fetching process's), not from a thread of this one.
        runtime = Runtime.build(settings, checkpoints=False, model_threads=1)
        checkpointer = _checkpointing(runtime.store.engine.url.database) \
            if settings.database_url.startswith("sqlite") else None
        pipeline = runtime.make_pipeline()
        pipeline.metrics = None
        size = settings.kafka_max_poll_records
        # The parent's side, untimed: decode, prepare and pack each batch.
        packed: list[bytes] = []
        handed: set[str] = set()
        batch = []
        for n, (_, _, value) in enumerate(_past_stream(args.events, args.unique_share, args.spacing_ms), start=1):
            batch.append(event_from_dict(json.loads(value)))
            if len(batch) == size or n == args.events:
                masked = {e.id: premask(e) for e in batch}
                new = [t for t in dict.fromkeys(masked.values()) if t not in handed]
                handed.update(new)
                vectors = runtime.embedder.embed(new) if new else []
                received_at = datetime.now(timezone.utc)
                rows = runtime.store.event_rows(batch, received_at, {e.id: document_json(e) for e in batch})
                prepared = Prepared({e.id: dedup_key(e) for e in batch}, {}, masked,
                                    {t: vectors[i].tobytes() for i, t in enumerate(new)}, rows, received_at)
                packed.append(pack_batch(batch, [], prepared))
                batch = []
        # The child's caches start with what the child did: here, packing filled the
        # store's cache of SQLite datetime texts, which the child's own would not hold.
        schema._SQLITE_TEXTS.clear()
        tune_gc()
        stages = pipeline.stages
        stages.reset()
        threads_before = _thread_cpu_s()
        profiler = cProfile.Profile() if args.profile else None
        started, cpu_before = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        for data in packed:
            pipeline(*take_batch(data, pipeline))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        cpu_s, wall_s = time.process_time() - cpu_before, time.perf_counter() - started
        threads_after = _thread_cpu_s()
        stats = runtime.store.noise_stats().total
        runtime.close()
        if checkpointer is not None:
            checkpointer.stdin.close()   # type: ignore[union-attr]
            checkpointer.wait(10)
    figures = {
        "events": args.events, "database": settings.database_url.split(":", 1)[0],
        "cpu_us_per_event": round(cpu_s / args.events * 1e6, 1),
        "events_per_s": round(args.events / wall_s),
        "stage_cpu_us_per_event": {s.value: round(v / args.events * 1e6, 1) for s, v in stages.cpu.items() if v},
        # the process's CPU by thread (the pipeline's, the store's checkpoint thread, ...)
        "thread_cpu_us_per_event": {name: round((cpu - threads_before.get(name, 0.0)) / args.events * 1e6, 1)
                                    for name, cpu in threads_after.items()
                                    if cpu - threads_before.get(name, 0.0) > 0.005 * cpu_s},
        "incidents": stats.incidents, "suppressed": stats.suppressed,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
