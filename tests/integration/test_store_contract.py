"""One contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import T0, make_event
from triage.pipeline import Pipeline
from triage.store import IncidentQuery, SqlStore


def test_batch_is_stored_with_memberships_and_incidents(store: SqlStore) -> None:
    events = [make_event(0, id="a1", fingerprint="fa"), make_event(30, id="a2", fingerprint="fb"),
              make_event(60, id="a3", fingerprint="fa"),
              make_event(5, id="p1", service="payments", fingerprint="fp")]
    result = Pipeline(store)(events)
    assert (result.stored, result.opened, result.attached, result.suppressed) == (4, 2, 1, 1)
    assert store.count_events() == 4
    page = store.list_incidents(IncidentQuery())
    assert page.total == 2
    checkout = next(i for i in page.items if i.services == ["checkout"])
    assert (checkout.event_count, checkout.alert_count, checkout.suppressed_count) == (3, 2, 1)
    assert checkout.firing_alerts == 2 and checkout.status == "open"
    stored = store.get_event("a2")
    assert stored is not None and stored.membership is not None
    assert stored.membership.rule == "same_scope_within_window" and stored.membership.evidence["gap_s"] == 30
    assert stored.event.occurred_at == T0 + timedelta(seconds=30)  # aware UTC round trip
    assert [e.event.id for e in store.incident_events(checkout.id)] == ["a1", "a2", "a3"]


def test_redelivered_batch_changes_nothing(store: SqlStore) -> None:
    events = [make_event(0, id="a1", fingerprint="fa"), make_event(30, id="a2", fingerprint="fb")]
    Pipeline(store)(events)
    before = store.list_incidents(IncidentQuery()).items
    again = Pipeline(store)(events + [make_event(40, id="a3", fingerprint="fc")])
    assert again.stored == 1 and again.received == 3
    assert store.count_events() == 3
    after = store.list_incidents(IncidentQuery()).items
    assert [i.id for i in after] == [i.id for i in before]
    assert after[0].event_count == 3


def test_state_carries_across_batches(store: SqlStore) -> None:
    pipeline = Pipeline(store)
    first = pipeline([make_event(0, id="a1", fingerprint="fa")])
    second = pipeline([make_event(600, id="a2", fingerprint="fa")])  # still firing: a duplicate
    third = pipeline([make_event(700, id="a3", fingerprint="fa", status="resolved")])
    assert (first.opened, second.suppressed, third.attached) == (1, 1, 1)
    [incident] = store.list_incidents(IncidentQuery()).items
    assert incident.status == "resolved" and incident.resolved_at == T0 + timedelta(seconds=700)


def test_incident_filters_and_pagination(store: SqlStore) -> None:
    pipeline = Pipeline(store)
    pipeline([make_event(i * 1000, id=f"c{i}", fingerprint=f"c{i}") for i in range(5)]
             + [make_event(10, id="p1", service="payments", fingerprint="p1")])
    assert store.list_incidents(IncidentQuery(service="payments")).total == 1
    assert store.list_incidents(IncidentQuery(service="checkout")).total == 5
    page = store.list_incidents(IncidentQuery(limit=2, offset=0))
    assert page.total == 6 and len(page.items) == 2
    assert page.items[0].opened_at >= page.items[1].opened_at  # newest first
    late = store.list_incidents(IncidentQuery(since=T0 + timedelta(seconds=2500)))
    assert {i.opened_at for i in late.items} == {T0 + timedelta(seconds=3000), T0 + timedelta(seconds=4000)}
    assert store.list_incidents(IncidentQuery(status="resolved")).total == 0


def test_noise_stats_split_by_source_and_service(store: SqlStore) -> None:
    Pipeline(store)([
        make_event(0, id="a1", fingerprint="fa"), make_event(10, id="a2", fingerprint="fa"),
        make_event(20, id="a3", fingerprint="fb", source="grafana"),
        make_event(30, id="l1", kind="log", source="otel", service="payments", severity="error", title="boom"),
    ])
    stats = store.noise_stats()
    assert (stats.total.events, stats.total.suppressed, stats.total.incidents) == (4, 1, 2)
    assert stats.total.compression == 0.5
    assert stats.by_source["alertmanager"].suppressed == 1 and stats.by_source["otel"].incidents == 1
    assert stats.by_service["checkout"].events == 3
    windowed = store.noise_stats(since=T0 + timedelta(seconds=15), until=T0 + timedelta(seconds=25))
    assert windowed.total.events == 1


def test_unknown_ids_are_none(store: SqlStore) -> None:
    assert store.get_incident("nope") is None and store.get_event("nope") is None
    store.ping()
