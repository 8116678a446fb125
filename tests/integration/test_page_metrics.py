"""The metrics the Grafana dashboard's page and latency panels read move as pages are
held, found transient, sent and refused, and as events are decided."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tests.conftest import EMBEDDER, make_event
from triage.models.parameters import CorrelationParameters
from triage.services.pipeline import Pipeline
from triage.paging.sender import DeliveryError, OutboxSender
from triage.store import SqlStore
from triage.paging.outbox import OutboxItem
from triage.services.telemetry import Metrics


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


class Target:
    def __init__(self, name: str, refuse: bool = False) -> None:
        self.name = name
        self.refuse = refuse

    def send(self, item: OutboxItem, document: dict[str, Any]) -> None:
        if self.refuse:
            raise DeliveryError("HTTP 400: invalid event", retryable=False)


def test_held_and_transient_first_pages_and_the_decision_delay(sqlite_store: SqlStore) -> None:
    metrics = Metrics()
    pipeline = Pipeline(sqlite_store, EMBEDDER, metrics, parameters=CorrelationParameters(auto_pause=60))
    pipeline([make_event(0, id="a1", fingerprint="fa"), make_event(1, id="p1", service="payments", fingerprint="fp",
                                                                   title="PaymentsDown")])
    assert value(metrics, "triage_pages_held_total") == 2     # two incidents, each first page waits
    assert value(metrics, "triage_pages_due_total") == 0
    pipeline([make_event(30, id="a1r", fingerprint="fa", status="resolved")])
    assert value(metrics, "triage_pages_transient_total") == 1   # resolved inside the pause: never sent
    # Every new event's delay is observed once; a redelivered batch adds nothing.
    pipeline([make_event(30, id="a1r", fingerprint="fa", status="resolved")])
    assert value(metrics, "triage_event_decision_delay_seconds_count") == 3
    # An event that occurred 20 s ago is decided now: its delay is about 20 s.
    pipeline([make_event(id="late", fingerprint="fl", title="Late", occurred_at=datetime.now(timezone.utc)
                         - timedelta(seconds=20))])
    assert value(metrics, "triage_event_decision_delay_seconds_count") == 4
    assert value(metrics, "triage_event_decision_delay_seconds_bucket", le="30.0") - \
        value(metrics, "triage_event_decision_delay_seconds_bucket", le="10.0") == 1


def test_without_auto_pause_nothing_is_held(sqlite_store: SqlStore) -> None:
    metrics = Metrics()
    # (auto_pause is on by default: this says what 0 does)
    Pipeline(sqlite_store, EMBEDDER, metrics, parameters=CorrelationParameters(auto_pause=0))(
        [make_event(0, id="a1", fingerprint="fa")])
    assert value(metrics, "triage_pages_held_total") == 0 and value(metrics, "triage_pages_due_total") == 1


def test_the_sender_counts_pages_sent_and_refused(sqlite_store: SqlStore) -> None:
    metrics = Metrics()
    Pipeline(sqlite_store, EMBEDDER, metrics, page_targets=["pagerduty", "webhook"], parameters=CorrelationParameters(
        group_wait=0, auto_pause=0))([make_event(0, id="a1", fingerprint="fa")])
    sender = OutboxSender(sqlite_store, [Target("pagerduty"), Target("webhook", refuse=True)], "http://triage",
                          observer=metrics)
    assert sender.run_once() == 2
    assert value(metrics, "triage_pages_sent_total", target="pagerduty", action="trigger") == 1
    assert value(metrics, "triage_pages_dropped_total", target="webhook", reason="refused") == 1
    assert value(metrics, "triage_pages_sent_total", target="webhook", action="trigger") == 0
