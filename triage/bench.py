"""``triage bench``: end-to-end throughput, Kafka -> correlation -> store, on the bundled storm."""

from __future__ import annotations

import gzip
import json
import resource
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

from triage.broker import EmbeddedBroker
from triage.replay import replay
from triage.service import Runtime
from triage.settings import Settings


def storm_lines(copies: int) -> Iterator[tuple[str, bytes]]:
    """The bundled storm ``copies`` times over, each copy with new ids and 2 h later:
    a longer stream with the same shape. Yields (event id, JSON line)."""
    lines = gzip.decompress((files("triage") / "data" / "sample_storm.jsonl.gz").read_bytes()).splitlines()
    for copy in range(copies):
        shift = timedelta(hours=2 * copy)
        for line in lines:
            doc = json.loads(line)
            doc["id"] = f"{doc['id']}-c{copy}"
            occurred = datetime.fromisoformat(doc["occurred_at"].replace("Z", "+00:00")) + shift
            doc["occurred_at"] = occurred.isoformat()
            yield doc["id"], json.dumps(doc).encode()


def write_storm(path: Path, copies: int) -> set[str]:
    ids: set[str] = set()
    with path.open("wb") as out:
        for event_id, line in storm_lines(copies):
            ids.add(event_id)
            out.write(line + b"\n")
    return ids


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_store_bench(settings: Settings, copies: int) -> dict[str, Any]:
    """The pipeline alone (correlation + one store transaction per batch), no Kafka."""
    from triage.ingest.decode import event_from_dict
    from triage.pipeline import Pipeline
    from triage.store import SqlStore

    events = [event_from_dict(json.loads(line)) for _, line in storm_lines(copies)]
    events.sort(key=lambda e: e.occurred_at)
    batch = settings.kafka_max_poll_records
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp:
        url = settings.database_url if "database_url" in settings.model_fields_set \
            else f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = SqlStore.from_url(url)
        pipeline = Pipeline(store)
        started = time.perf_counter()
        for i in range(0, len(events), batch):
            pipeline(events[i:i + batch])
        seconds = time.perf_counter() - started
        store.close()
    return {"events": len(events), "database": url.split(":", 1)[0], "batch": batch,
            "pipeline_events_per_s": round(len(events) / seconds), "seconds": round(seconds, 2),
            "peak_rss_mib": round(peak_rss_mib(), 1)}


def run_bench(settings: Settings, copies: int, *, progress: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp, EmbeddedBroker() as broker:
        path = Path(tmp) / "storm.jsonl"
        ids = write_storm(path, copies)
        database_url = settings.database_url
        if "database_url" not in settings.model_fields_set:
            database_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers,
                                               "database_url": database_url,
                                               "kafka_session_timeout_ms": 6000,
                                               "kafka_heartbeat_interval_ms": 1000})
        runtime = Runtime.build(settings)
        consumer = runtime.make_consumer()
        started = time.perf_counter()
        produced = replay(path, settings, progress=progress).produced
        produce_s = time.perf_counter() - started
        # Wait for the group assignment before timing: that is start-up, not throughput.
        while not consumer.totals.assigned:
            consumer.poll_once()
        first_poll = time.perf_counter()
        thread = threading.Thread(target=consumer.run, args=(runtime.stop,))
        thread.start()
        try:
            while runtime.store.count_events() < len(ids):
                time.sleep(0.05)
            consume_s = time.perf_counter() - first_poll
        finally:
            runtime.stop.set()
            thread.join(60)
        stats = runtime.store.noise_stats().total
        runtime.close()
    return {
        "events": len(ids), "produced": produced, "database": database_url.split(":", 1)[0],
        "produce_events_per_s": round(produced / produce_s),
        "consume_store_events_per_s": round(len(ids) / consume_s),
        "consume_seconds": round(consume_s, 2), "batches": consumer.totals.batches,
        "incidents": stats.incidents, "suppressed": stats.suppressed,
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
