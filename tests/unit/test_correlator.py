"""The baseline correlator, with time handed in (a frozen clock: T0 + seconds)."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import T0, make_event
from triage.correlation import Action, Correlator
from triage.correlation.explain import explain
from triage.models.parameters import CorrelationParameters


def run(correlator: Correlator, event_seconds: list[tuple[float, dict]]) -> list:  # type: ignore[type-arg]
    return [correlator.process(e := make_event(s, **f), now=e.occurred_at) for s, f in event_seconds]


def test_renotified_firing_alert_is_suppressed_on_its_incident() -> None:
    c = Correlator()
    first, again = run(c, [(0, {"fingerprint": "fp1"}), (300, {"fingerprint": "fp1"})])
    assert first.action is Action.opened
    assert again.action is Action.suppressed and again.incident_id == first.incident_id
    assert again.rule == "duplicate" and again.evidence["seen_before"] == 1
    assert c.state.incidents[first.incident_id].suppressed_count == 1


def test_same_service_within_window_attaches_with_evidence() -> None:
    c = Correlator(CorrelationParameters(window=300))
    a, b = run(c, [(0, {"fingerprint": "a"}), (40, {"fingerprint": "b", "title": "Latency"})])
    assert b.action is Action.attached and b.incident_id == a.incident_id
    assert b.rule == "same_scope_within_window"
    assert b.evidence["gap_s"] == 40 and b.evidence["window_s"] == 300
    assert "40 s after" in explain(b.rule, b.evidence)


def test_gap_longer_than_window_opens_a_new_incident() -> None:
    c = Correlator(CorrelationParameters(window=300))
    a, b = run(c, [(0, {"fingerprint": "a"}), (301, {"fingerprint": "b"})])
    assert b.action is Action.opened and b.incident_id != a.incident_id
    assert b.evidence["previous_incident"] == a.incident_id


def test_other_service_opens_its_own_incident() -> None:
    c = Correlator()
    a, b = run(c, [(0, {"fingerprint": "a"}), (1, {"fingerprint": "b", "service": "payments"})])
    assert b.action is Action.opened and b.incident_id != a.incident_id


def test_host_is_the_scope_when_there_is_no_service() -> None:
    c = Correlator()
    a, b = run(c, [(0, {"fingerprint": "a", "service": None, "host": "node-1"}),
                   (5, {"fingerprint": "b", "service": None, "host": "node-1"})])
    assert b.incident_id == a.incident_id and b.evidence["scope"] == "host:node-1"


def test_incident_resolves_when_all_its_alerts_resolve() -> None:
    c = Correlator()
    decisions = run(c, [
        (0, {"fingerprint": "a"}), (10, {"fingerprint": "b"}),
        (60, {"fingerprint": "a", "status": "resolved"}),
        (70, {"fingerprint": "b", "status": "resolved"}),
    ])
    incident = c.state.incidents[decisions[0].incident_id]
    assert decisions[2].rule == "alert_resolved" and decisions[2].evidence["still_firing"] == 1
    assert decisions[3].evidence["incident_resolved"] is True
    assert incident.status == "resolved" and incident.resolved_at == T0 + timedelta(seconds=70)


def test_alert_firing_again_after_resolve_is_a_new_episode() -> None:
    c = Correlator(CorrelationParameters(window=60))
    d = run(c, [(0, {"fingerprint": "a"}), (30, {"fingerprint": "a", "status": "resolved"}),
                (1000, {"fingerprint": "a"})])
    assert d[2].action is Action.opened and d[2].incident_id != d[0].incident_id


def test_incident_stops_growing_after_max_age() -> None:
    c = Correlator(CorrelationParameters(window=300, max_incident_age=600))
    d = run(c, [(s, {"fingerprint": f"f{s}"}) for s in (0, 200, 400, 601)])
    assert [x.action for x in d] == [Action.opened, Action.attached, Action.attached, Action.opened]


def test_identical_log_lines_are_duplicates_within_dedup_window() -> None:
    c = Correlator(CorrelationParameters(dedup_window=60))
    log = {"kind": "log", "source": "otel", "severity": "error", "title": "conn refused", "labels": {}}
    d = run(c, [(0, log), (30, log), (100, log)])
    assert d[1].action is Action.suppressed
    assert d[2].action is Action.attached  # past dedup_window: a repeat, not a duplicate


def test_pages_follow_alertmanager_timers() -> None:
    c = Correlator(CorrelationParameters(group_interval=300, repeat_interval=3600))
    d = run(c, [(0, {"fingerprint": "a"}), (60, {"fingerprint": "b"}), (120, {"fingerprint": "a"}),
                (250, {"fingerprint": "c"}), (301, {"fingerprint": "d"}), (3700, {"fingerprint": "a"})])
    assert [x.notify for x in d] == [True, False, False, False, True, False]


def test_batch_is_decided_in_event_time_order() -> None:
    c = Correlator()
    late, early = make_event(50, fingerprint="x"), make_event(0, fingerprint="y")
    decisions = c.process_batch([late, early])
    assert [x.event_id for x in decisions] == [early.id, late.id]
    assert decisions[0].action is Action.opened and decisions[1].action is Action.attached


def test_decisions_carry_the_parameters_version() -> None:
    c = Correlator(parameters_version=7)
    assert run(c, [(0, {})])[0].parameters_version == 7
