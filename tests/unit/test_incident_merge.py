"""IncidentState.absorb: what a responder's merge does to the correlator's view of an incident."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from tests.conftest import T0
from triage.correlation.state import IncidentKind, IncidentState
from triage.domain.event import Severity


def incident(id: str, minutes: float, **fields: object) -> IncidentState:
    at = T0 + timedelta(minutes=minutes)
    base: dict[str, object] = dict(id=id, scope="global", title=f"title {id}", opened_at=at, last_event_at=at,
                                   severity=Severity.warning)
    base.update(fields)
    return IncidentState(**base)  # type: ignore[arg-type]


def test_absorbing_takes_the_others_events_alerts_services_and_profile() -> None:
    a = incident("a", 0, services={"cart"}, firing={"am:1"}, event_count=3, alert_count=1, kind=IncidentKind.noise,
                 nodes={"cart": 10.0}, footprint={"cart|t1": 10.0}, templates={"t1": "redis down"},
                 centroid=[1.0, 0.0], accepting_until=T0 + timedelta(minutes=5))
    b = incident("b", 2, services={"frontend"}, firing={"am:2"}, event_count=2, alert_count=2, suppressed_count=1,
                 severity=Severity.critical, nodes={"cart": 50.0, "frontend": 40.0}, footprint={"frontend|t2": 40.0},
                 templates={"t2": "checkout failing"}, centroid=[0.0, 1.0], last_notified_at=T0 + timedelta(minutes=2),
                 accepting_until=T0 + timedelta(minutes=9), kind=IncidentKind.incident)
    a.absorb(b)
    assert (a.event_count, a.alert_count, a.suppressed_count) == (5, 3, 1)
    assert a.services == {"cart", "frontend"} and a.firing == {"am:1", "am:2"}
    assert a.severity is Severity.critical and a.kind == IncidentKind.incident and a.title == "title b"
    assert a.opened_at == T0 and a.last_event_at == T0 + timedelta(minutes=2)
    assert a.accepting_until == T0 + timedelta(minutes=9) and a.last_notified_at == T0 + timedelta(minutes=2)
    assert a.nodes == {"cart": 50.0, "frontend": 40.0} and set(a.footprint) == {"cart|t1", "frontend|t2"}
    assert a.templates == {"t1": "redis down", "t2": "checkout failing"}
    assert a.centroid is not None and np.allclose(a.centroid, [0.70711, 0.70711]) and a.dirty


def test_an_open_incident_absorbed_reopens_a_resolved_one_and_scopes_must_match() -> None:
    a = incident("a", 0, status="resolved", resolved_at=T0 + timedelta(minutes=3), transient=True)
    a.absorb(incident("b", 1))
    assert a.is_open and a.resolved_at is None and not a.transient
    with pytest.raises(ValueError, match="scope"):
        a.absorb(incident("c", 1, scope="domain:eu"))


def test_rebuilding_an_incident_from_its_own_events_reproduces_it() -> None:
    """What a split computes for each side is what the correlator built event by event."""
    from tests.conftest import make_event
    from tests.unit.test_correlator import correlator, log, span

    c = correlator()
    events = [
        make_event(0, fingerprint="f1", labels={"alertname": "HighErrorRate", "pod": "checkout-1"}),
        make_event(5, **log(title="connection refused to cart after 30 ms")),
        make_event(9, **span("frontend", "checkout")),
        make_event(12, fingerprint="f1", labels={"alertname": "HighErrorRate", "pod": "checkout-1"}),
        make_event(20, fingerprint="f2", title="Latency high", labels={"alertname": "Latency"}),
        make_event(30, fingerprint="f1", status="resolved", labels={"alertname": "HighErrorRate", "pod": "checkout-1"}),
    ]
    decisions = c.process_batch(events)
    [incident_id] = {d.incident_id for d in decisions}
    live = c.state.incidents[incident_id]
    held = [(e, d.rule, d.template if d.rule not in ("duplicate", "alert_resolved") else None)
            for e, d in zip(events, decisions, strict=True)]
    again = IncidentState(id=incident_id, scope=live.scope, title=live.title, opened_at=T0, last_event_at=T0,
                          severity=Severity.info, templates=dict(live.templates))
    correlator().rebuild(again, held)
    for field in ("opened_at", "last_event_at", "event_count", "alert_count", "suppressed_count", "severity",
                  "services", "firing", "nodes", "footprint", "templates", "labels", "centroid", "status",
                  "accepting_until"):
        assert getattr(again, field) == getattr(live, field), field
    assert live.suppressed_count == 1 and live.firing == {"alertmanager:f2"} and live.is_open
