"""The process's lifecycle: background loops survive their dependencies failing; a process
that cannot go on stops with a failure code; a signal stops it cleanly."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from kafka.errors import KafkaError, KafkaTimeoutError

from tests.conftest import EMBEDDER
from triage.domain.health import Backoff
from triage.paging.sender import OutboxSender
from triage.service import Runtime
from triage.settings import Settings
from triage.store import SqlStore
from triage.paging.outbox import OutboxItem
from triage.services.telemetry import Metrics


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", api_port=0)
    r = Runtime(settings=settings, store=SqlStore.from_url(settings.database_url), metrics=Metrics(),
                embedder=EMBEDDER)
    yield r
    r.close()


def test_a_thread_that_dies_stops_the_process_with_a_failure_code(runtime: Runtime) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    runtime._spawn("jobs", broken)
    assert runtime.wait() == 1
    assert runtime.failure == "the jobs thread died: RuntimeError: boom"


def test_a_thread_that_ends_before_the_stop_is_a_failure_too(runtime: Runtime) -> None:
    runtime._spawn("api", lambda: None)
    assert runtime.wait() == 1 and runtime.failure == "the api thread ended on its own"


def test_a_signal_stops_the_process_cleanly(runtime: Runtime) -> None:
    runtime._spawn("metrics", lambda: None, ends=True)   # done once started: not a failure
    runtime._spawn("loop", lambda: runtime.stop.wait())
    time.sleep(0.2)
    assert not runtime.stop.is_set()
    runtime.stop.set()   # what stop_on_signals does on SIGTERM
    assert runtime.wait() == 0 and runtime.failure is None


def test_the_sender_survives_the_database_failing_and_says_so(runtime: Runtime) -> None:
    sender = OutboxSender(runtime.store, [], "http://t", health=runtime.health)
    calls: list[bool] = []
    down = sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    def claim_due(now: datetime, limit: int = 50, lease: timedelta = timedelta(seconds=60)) -> list[OutboxItem]:
        calls.append(runtime.health.is_ok("sender"))
        if len(calls) <= 3:
            raise down
        return []
    sender.outbox.claim_due = claim_due  # type: ignore[method-assign]
    thread = threading.Thread(target=sender.run, args=(runtime.stop, 0.01, Backoff(0.01, 0.05)))
    thread.start()
    try:
        wait_until(lambda: len(calls) >= 6)
        assert thread.is_alive()
        assert calls[:5] == [True, False, False, False, True]   # failing during the outage, ok after
        assert runtime.health.is_ok("sender")
        assert runtime.metrics.registry.get_sample_value("triage_component_failures_total",
                                                         {"component": "sender"}) == 3
    finally:
        runtime.stop.set()
        thread.join(5)


class FakeConsumer:
    def __init__(self, failure: Exception | None) -> None:
        self.failure = failure

    def run(self, stop: threading.Event) -> None:
        if self.failure is not None:
            raise self.failure
        stop.wait()


def test_a_consumer_that_fails_is_replaced_with_backoff_not_the_process_stopped(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[bool] = []
    plan: list[Exception | FakeConsumer] = [
        KafkaTimeoutError("Unable to bootstrap"),  # the broker is down at start
        FakeConsumer(KafkaError("poll failed")),   # the client raises later
        FakeConsumer(None),                        # and then it runs
    ]

    def connect(pipeline: Any) -> FakeConsumer:
        attempts.append(runtime.health.is_ok("consumer"))
        step = plan.pop(0)
        if isinstance(step, Exception):
            raise step
        return step
    monkeypatch.setattr(runtime, "connect_consumer", connect)
    runtime.health.register("consumer")
    runtime._spawn("consumer", lambda: runtime._run_consumer(None, Backoff(0.01, 0.05)))  # type: ignore[arg-type]
    wait_until(lambda: not plan and runtime.health.is_ok("consumer"))
    assert attempts == [True, False, False]
    assert runtime.metrics.registry.get_sample_value("triage_component_failures_total",
                                                     {"component": "consumer"}) == 2
    assert not runtime.stop.is_set() and runtime.failure is None
    runtime.stop.set()
    assert runtime.wait() == 0


def test_the_metrics_server_waits_for_its_port(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    settings = Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", metrics_port=port)
    runtime = Runtime(settings=settings, store=SqlStore.from_url(settings.database_url), metrics=Metrics(),
                      embedder=EMBEDDER)
    try:
        runtime.start_metrics_server()
        wait_until(lambda: not runtime.health.is_ok("metrics"))
        taken.close()
        wait_until(lambda: runtime.health.is_ok("metrics"))
        body = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'triage_component_up{component="metrics"} 1.0' in body
        assert not runtime.stop.is_set()
    finally:
        taken.close()
        runtime.close()
