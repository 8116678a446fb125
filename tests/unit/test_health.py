"""The health registry: state changes are logged once, failures counted, /readyz reads it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa
from kafka.errors import KafkaConnectionError, KafkaTimeoutError
from prometheus_client import CollectorRegistry

from triage.domain.health import Backoff, DependencyFailure, Health, describe, is_dependency_failure, run_loop


def test_a_failure_is_logged_once_per_state_change(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    now = [0.0]
    health = Health(registry, clock=lambda: now[0])
    health.register("sender")
    with caplog.at_level(logging.INFO, logger="triage.domain.health"):
        for _ in range(5):
            now[0] += 1
            health.failing("sender", "OperationalError: connection refused")
        health.failing("sender", "OperationalError: timeout")
        health.ok("sender")
        health.ok("sender")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3, messages
    assert "connection refused" in messages[0] and "timeout" in messages[1] and "recovered" in messages[2]
    assert registry.get_sample_value("triage_component_failures_total", {"component": "sender"}) == 6
    assert registry.get_sample_value("triage_component_up", {"component": "sender"}) == 1


def test_states_show_the_failing_component_with_its_reason_and_since() -> None:
    now = [10.0]
    health = Health(clock=lambda: now[0])
    health.failing("families", "boom")
    now[0] = 20.0
    health.failing("families", "boom")
    [state] = health.states()
    assert (state.ok, state.reason, state.since, state.failures) == (False, "boom", 10.0, 2)


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(first_s=1, max_s=5)
    assert [backoff.next() for _ in range(5)] == [1, 2, 4, 5, 5]
    backoff.reset()
    assert backoff.next() == 1


class CountedStop(threading.Event):
    """A stop event whose ``wait`` returns at once, records the pause asked for, and sets
    the event after ``turns`` waits: ``run_loop`` runs that many times, without sleeping."""

    def __init__(self, turns: int) -> None:
        super().__init__()
        self.turns = turns
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(timeout if timeout is not None else -1.0)
        if len(self.pauses) > self.turns:
            self.set()
        return self.is_set()


def outage(failures: int, exc: Exception) -> Callable[[], float]:
    calls = [0]

    def turn() -> float:
        calls[0] += 1
        if calls[0] <= failures:
            raise exc
        return 5.0
    return turn


def test_a_loop_survives_its_dependency_failing_backs_off_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    health = Health(registry)
    stop = CountedStop(turns=6)
    down = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    seen: list[bool] = []
    turn = outage(4, down)

    def watched() -> float:
        try:
            return turn()
        finally:
            seen.append(health.is_ok("sender"))

    with caplog.at_level(logging.INFO, logger="triage.domain.health"):
        run_loop("sender", health, stop, watched, backoff=Backoff(first_s=1, max_s=4), first_delay_s=0.5)
    # The first wait, then four failed turns backing off, then turns at their own pace.
    assert stop.pauses == [0.5, 1, 2, 4, 4, 5.0, 5.0]
    assert seen == [True, False, False, False, False, True]   # what each turn found before it
    assert health.is_ok("sender")
    assert registry.get_sample_value("triage_component_failures_total", {"component": "sender"}) == 4
    # Two lines for the whole outage, neither with a traceback: a dependency's failure is its reason.
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert "OperationalError" in caplog.records[0].getMessage() and caplog.records[0].exc_info is None


def test_a_bug_in_a_turn_is_retried_shown_as_a_bug_and_its_traceback_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    health = Health()
    stop = CountedStop(turns=5)
    with caplog.at_level(logging.INFO, logger="triage.domain.health"):
        run_loop("families", health, stop, outage(10, TypeError("unsupported operand")),
                 backoff=Backoff(first_s=1, max_s=2))
    [state] = health.states()
    assert not state.ok and state.failures == 5 and state.reason == "bug: TypeError: unsupported operand"
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is TypeError


def test_what_counts_as_a_dependency_failure() -> None:
    assert is_dependency_failure(sa.exc.OperationalError("x", {}, Exception("down")))
    assert is_dependency_failure(KafkaConnectionError("broker down"))
    assert is_dependency_failure(httpx.ConnectError("refused"))
    assert is_dependency_failure(ConnectionRefusedError(111, "refused"))
    assert is_dependency_failure(DependencyFailure("OperationalError: in the child"))
    assert not is_dependency_failure(sa.exc.IntegrityError("x", {}, Exception("duplicate key")))
    assert not is_dependency_failure(KeyError("id"))
    assert describe(sa.exc.OperationalError("SELECT 1", {}, Exception("refused\nmore"))) \
        == "OperationalError: (builtins.Exception) refused"


def test_a_second_health_names_its_own_metrics() -> None:
    registry = CollectorRegistry()
    Health(registry).register("sender")
    targets = Health(registry, metric="triage_page_target", label="target")
    targets.failing("webhook", "HTTP 503")
    assert registry.get_sample_value("triage_page_target_up", {"target": "webhook"}) == 0
    assert registry.get_sample_value("triage_page_target_failures_total", {"target": "webhook"}) == 1
    assert registry.get_sample_value("triage_component_up", {"component": "sender"}) == 1


def test_a_reason_names_the_type_once() -> None:
    assert describe(KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:9092")) \
        == "KafkaTimeoutError: Unable to bootstrap from 127.0.0.1:9092"
    assert describe(DependencyFailure("OperationalError: unable to open database file")) \
        == "OperationalError: unable to open database file"
    assert describe(TimeoutError()) == "TimeoutError"
