"""Helpers for tests that talk to the real broker."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from triage.evaluation.bench import write_storm
from triage.service import Runtime
from triage.settings import Settings


def isolated_settings(bootstrap: str, database_url: str, **extra: Any) -> Settings:
    """Settings with topics and group of their own, so tests share one broker safely."""
    uid = uuid.uuid4().hex[:8]
    return Settings(
        kafka_bootstrap_servers=bootstrap, database_url=database_url, kafka_group_id=f"triage-{uid}",
        topic_alerts=f"alerts-{uid}", topic_logs=f"logs-{uid}", topic_traces=f"traces-{uid}",
        topic_dlq=f"dlq-{uid}", kafka_session_timeout_ms=6000, kafka_heartbeat_interval_ms=1000,
        api_port=0, **extra)


def env_of(settings: Settings) -> dict[str, str]:
    """The same settings as TRIAGE_* variables, for a `triage` subprocess."""
    return {f"TRIAGE_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v is not None}


def produce(bootstrap: str, topic: str, values: Iterable[bytes], key: Callable[[bytes], bytes] | None = None) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    n = 0
    for value in values:
        producer.send(topic, key=key(value) if key else None, value=value)
        n += 1
    producer.flush()
    producer.close()
    return n


def event_json(**fields: Any) -> bytes:
    doc = {"kind": "alert", "source": "alertmanager", "occurred_at": "2026-03-11T14:00:00Z",
           "service": "checkout", "severity": "critical", "status": "firing", "title": "HighErrorRate"}
    doc.update(fields)
    return json.dumps(doc).encode()


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Any]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=f"reader-{uuid.uuid4().hex[:6]}", enable_auto_commit=False,
                             session_timeout_ms=6000, heartbeat_interval_ms=1000)
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=500).values():
                got.extend(msgs)
    finally:
        consumer.close()
    return got


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def storm_file(path: Path, copies: int) -> tuple[Path, set[str]]:
    """The bundled storm, ``copies`` times over (new ids, shifted by 2 h each): a longer stream."""
    return path, write_storm(path, copies)


def start_triage(args: list[str], settings: Settings, log_path: Path, **env: str) -> subprocess.Popen[bytes]:
    """Run the installed `triage` command as a user would, logging to a file."""

    exe = shutil.which("triage", path=str(Path(sys.executable).parent)) or "triage"
    full_env = {**os.environ, **env_of(settings), **env}
    return subprocess.Popen([exe, *args], env=full_env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)


def assignment_of(log_path: Path) -> str | None:
    """The last partition assignment a `triage consume` process logged."""
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if "assigned partitions:" in ln]
    return lines[-1].split("assigned partitions:", 1)[1].strip() if lines else None


@contextmanager
def running(bootstrap: str, database: Path | str, *, api: bool = True, **settings: Any) -> Iterator[Runtime]:
    """A triage process in this one: consumer (and API) on its own topics and database
    (a SQLite file, or a database URL)."""
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    runtime = Runtime.build(isolated_settings(bootstrap, url, **settings))
    try:
        runtime.start_consumer()
        if api:
            runtime.start_api()
        yield runtime
    finally:
        runtime.close()
