"""kill -9 the consumer mid-stream, restart it: every event stored exactly once, none missing."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.integration.kafka_helpers import isolated_settings, start_triage, storm_file, wait_for
from triage.broker import EmbeddedBroker
from triage.ingest.kafka_admin import ensure_topics
from triage.replay import replay
from triage.store import SqlStore

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("correlator_process", [False, True], ids=["one-process", "correlator-process"])
def test_kill_9_mid_stream_then_restart_loses_nothing_and_stores_nothing_twice(
        broker: EmbeddedBroker, tmp_path: Path, correlator_process: bool) -> None:
    # With a correlator process, SIGKILL of the consuming process takes its child (which
    # holds the store's transaction) with it: nothing is lost or stored twice either.
    db = tmp_path / "crash.db"
    settings = isolated_settings(broker.bootstrap_servers, f"sqlite:///{db}", kafka_max_poll_records=100,
                                 correlator_process=correlator_process)
    ensure_topics(settings.kafka_bootstrap_servers, [*settings.topics, settings.topic_dlq], 4)
    path, ids = storm_file(tmp_path / "storm.jsonl", copies=3)
    assert replay(path, settings, progress=False).produced == len(ids)

    store = SqlStore.from_url(settings.database_url)
    first = start_triage(["consume"], settings, tmp_path / "first.log")
    try:
        wait_for(lambda: store.count_events() >= 1000, 60, "the first consumer to store 1000 events",
                 interval=0.02)
        children = _correlators_of(first.pid)
        assert bool(children) == correlator_process
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    stored_at_kill = store.count_events()
    assert stored_at_kill < len(ids), "the consumer finished before it could be killed mid-stream"
    # The child died with its parent, and its transaction with it.
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), 10, "the correlator process to end")

    second = start_triage(["consume"], settings, tmp_path / "second.log")
    try:
        wait_for(lambda: store.count_events() >= len(ids), 300, f"all {len(ids)} events stored")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, (tmp_path / "second.log").read_text()[-2000:]
    finally:
        second.kill()

    memberships = store.all_memberships()
    assert store.count_events() == len(ids) and set(memberships) == ids
    # Redelivered events were recognised, not decided twice: one decision each.
    assert len(memberships) == len(ids)
    store.close()


def _correlators_of(parent: int) -> list[int]:
    """The correlator processes (``multiprocessing`` children) of process ``parent``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and b"spawn_main" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found
