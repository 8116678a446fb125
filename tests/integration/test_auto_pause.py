"""Auto-pause: a held first page is sent by the ticker when nothing else arrives, once, and
never for an alert that resolved inside the pause. Time is passed in, never slept."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.conftest import EMBEDDER, make_event
from triage.correlation import Correlator
from triage.domain.event import Event
from triage.models.parameters import CorrelationParameters
from triage.services.pipeline import Pipeline
from triage.paging.sender import OutboxSender
from triage.store import SqlStore
from triage.store.batch import Kept
from triage.paging.outbox import Owed, OutboxItem, OutboxStore, enqueue
from triage.paging.held_pages import release_held_pages

PAUSED = CorrelationParameters(auto_pause=60)
TARGETS = ["webhook"]


def start() -> datetime:
    """Events happen now, as live alerts do (the pipeline stamps receipt with the wall clock)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def alert(t0: datetime, seconds: float, event_id: str, fingerprint: str = "a", **fields: Any) -> Event:
    return make_event(0, id=event_id, fingerprint=fingerprint, occurred_at=t0 + timedelta(seconds=seconds), **fields)


def pipeline(store: SqlStore) -> Pipeline:
    return Pipeline(store, EMBEDDER, parameters=PAUSED, page_targets=TARGETS)


def triggers(store: SqlStore) -> list[dict[str, Any]]:
    return [r for r in OutboxStore(store.engine).items() if r["action"] == "trigger"]


def test_an_alert_resolved_inside_the_pause_pages_nobody(store: SqlStore) -> None:
    t0 = start()
    decisions = pipeline(store)([alert(t0, 0, "fire"), alert(t0, 30, "ok", status="resolved")])
    assert decisions.notified == 0
    incident = store.get_incident(store.get_event("fire").membership.incident_id)  # type: ignore[union-attr]
    assert incident is not None and incident.transient and incident.status == "resolved"
    assert release_held_pages(store, TARGETS, t0 + timedelta(seconds=120)) == []
    assert OutboxStore(store.engine).items() == []
    assert store.noise_stats().total.pages == 0


def test_a_held_page_is_sent_once_when_the_pause_is_over(store: SqlStore) -> None:
    t0 = start()
    assert pipeline(store)([alert(t0, 0, "fire")]).notified == 0    # held: due at t0 + 60 s
    assert release_held_pages(store, TARGETS, t0 + timedelta(seconds=30)) == []
    assert triggers(store) == []

    [page] = release_held_pages(store, TARGETS, t0 + timedelta(seconds=120))
    incident_id = store.get_event("fire").membership.incident_id   # type: ignore[union-attr]
    assert page.incident_id == incident_id and page.cause_event_id == "fire"
    [row] = triggers(store)
    assert row["id"] == f"webhook:{incident_id}:trigger:fire" and row["status"] == "pending"
    incident = store.get_incident(incident_id)
    assert incident is not None and not incident.transient and incident.last_notified_at == page.notified_at
    # Received within a second of occurring: the incident's clock is the wall clock, less that.
    assert t0 + timedelta(seconds=119) <= page.notified_at <= t0 + timedelta(seconds=120)
    assert store.get_event("fire").membership.notify   # type: ignore[union-attr]
    assert store.noise_stats().total.pages == 1

    assert release_held_pages(store, TARGETS, t0 + timedelta(seconds=180)) == []   # once
    assert len(triggers(store)) == 1
    # Later alerts of the incident follow group_interval from that page: no second trigger.
    assert pipeline(store)([alert(t0, 200, "more", fingerprint="b")]).notified == 0
    assert len(triggers(store)) == 1


def test_a_batch_that_pages_first_leaves_nothing_to_the_ticker(store: SqlStore) -> None:
    t0 = start()
    p = pipeline(store)
    p([alert(t0, 0, "fire")])
    assert p([alert(t0, 70, "second", fingerprint="b")]).notified == 1    # past page_due_at: the batch pages
    assert release_held_pages(store, TARGETS, t0 + timedelta(seconds=120)) == []
    assert [r["id"].rsplit(":", 1)[1] for r in triggers(store)] == ["second"]


def test_the_pause_is_measured_on_the_incidents_clock(store: SqlStore) -> None:
    """An alert received an hour after it fired (a lagging consumer, a replay) still gets
    its whole pause: the ticker waits until 60 s after receipt, and stores the page on
    the incident's clock."""
    t0 = datetime(2026, 3, 11, 14, 0, tzinfo=timezone.utc)
    received = t0 + timedelta(hours=1)

    with store.batch([alert(t0, 0, "fire")], received_at=received) as batch:   # no pipeline: no outbox
        state = batch.load_state(Kept())
        batch.write(Correlator(PAUSED, state=state, embedder=EMBEDDER).process_batch(batch.new), state)
    assert release_held_pages(store, TARGETS, t0 + timedelta(seconds=60)) == []
    assert release_held_pages(store, TARGETS, received + timedelta(seconds=59)) == []
    [page] = release_held_pages(store, TARGETS, received + timedelta(seconds=60))
    assert page.notified_at == t0 + timedelta(seconds=60)
    incident = store.get_incident(page.incident_id)
    assert incident is not None and incident.last_notified_at == t0 + timedelta(seconds=60)


def test_replicas_ticking_together_enqueue_one_page(store: SqlStore) -> None:
    t0 = start()
    pipeline(store)([alert(t0, 0, "fire"), alert(t0, 1, "other", fingerprint="x", service="payments")])
    results: list[int] = []
    barrier = threading.Barrier(3)

    def tick() -> None:
        barrier.wait()
        results.append(len(release_held_pages(store, TARGETS, t0 + timedelta(seconds=120))))

    threads = [threading.Thread(target=tick) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [0, 0, 2]
    assert len(triggers(store)) == 2


class Recorder:
    name = "webhook"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, item: OutboxItem, document: dict[str, Any]) -> None:
        self.sent.append(item.id)


def test_the_sender_does_not_page_a_transient_incident(store: SqlStore) -> None:
    t0 = start()
    pipeline(store)([alert(t0, 0, "fire"), alert(t0, 30, "ok", status="resolved")])
    incident_id = store.get_event("fire").membership.incident_id   # type: ignore[union-attr]
    with store.engine.begin() as conn:   # a trigger owed anyway (by whatever path): not sent
        enqueue(conn, [Owed(incident_id, "trigger", "fire")], TARGETS, t0)
    target = Recorder()
    OutboxSender(store, [target], "http://t", clock=lambda: t0 + timedelta(seconds=120)).run_once()
    assert target.sent == []
    [row] = OutboxStore(store.engine).items()
    assert row["status"] == "skipped" and "transient" in row["last_error"]
