"""Two `triage consume` processes in one group on PostgreSQL, one killed mid-stream, give
the same incidents as a single consumer."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from tests.integration.kafka_helpers import (
    assignment_of, isolated_settings, start_triage, storm_file, wait_for,
)
from triage.broker import EmbeddedBroker
from triage.ingest.kafka_admin import ensure_topics
from triage.replay import replay
from triage.service import Runtime
from triage.store import IncidentQuery, SqlStore

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def single_consumer_run(broker: EmbeddedBroker, path: Path, expected: int, db: Path) -> dict[str, str]:
    settings = isolated_settings(broker.bootstrap_servers, f"sqlite:///{db}")
    replay(path, settings, progress=False)
    runtime = Runtime.build(settings)
    consumer = runtime.make_consumer()
    thread = threading.Thread(target=consumer.run, args=(runtime.stop,))
    thread.start()
    try:
        wait_for(lambda: runtime.store.count_events() >= expected, 300, "the single consumer")
    finally:
        runtime.stop.set()
        thread.join(30)
    result = runtime.store.all_memberships()
    runtime.close()
    return result


def test_two_consumers_one_killed_match_a_single_consumer(
        broker: EmbeddedBroker, pg_url: str, tmp_path: Path) -> None:
    path, ids = storm_file(tmp_path / "storm.jsonl", copies=2)
    settings = isolated_settings(broker.bootstrap_servers, pg_url, kafka_max_poll_records=50)
    ensure_topics(settings.kafka_bootstrap_servers, [*settings.topics, settings.topic_dlq], 4)
    store = SqlStore.from_url(pg_url)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start_triage(["consume"], settings, log) for log in logs]
    try:
        def both_assigned() -> bool:
            found = [assignment_of(log) for log in logs]
            return all(a not in (None, "[]") for a in found)

        wait_for(both_assigned, 60, "both consumers to hold partitions")
        replay(path, settings, progress=False)
        wait_for(lambda: store.count_events() >= len(ids) // 4, 60, "a quarter of the stream", interval=0.02)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        assert store.count_events() < len(ids), "the stream ended before a consumer could be killed"
        wait_for(lambda: store.count_events() >= len(ids), 300, "the survivor to finish the stream")
        assert assignment_of(logs[1]) is not None
    finally:
        for p in procs:
            p.kill()
            p.wait(10)

    multi = store.all_memberships()
    single = single_consumer_run(broker, path, len(ids), tmp_path / "single.db")
    assert set(multi) == ids and len(multi) == len(ids)
    assert multi == single  # same incident for every event (incident ids are deterministic)
    incidents = store.list_incidents(IncidentQuery(limit=500)).total
    assert incidents == len(set(single.values()))
    store.close()
