"""The health registry: state changes are logged once, failures counted, /readyz reads it."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from triage.health import Backoff, Health


def test_a_failure_is_logged_once_per_state_change(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    now = [0.0]
    health = Health(registry, clock=lambda: now[0])
    health.register("sender")
    with caplog.at_level(logging.INFO, logger="triage.health"):
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
