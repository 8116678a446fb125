"""GET /stats/oncall with hand-made responder feedback (SQLite and PostgreSQL); every
expected figure is worked out by hand in the docstring of the scenario."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER, T0, make_event
from triage.api import create_app
from triage.models.alert_families import TemplateFamilies
from triage.models.parameters import CorrelationParameters
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store import schema as t
from triage.store.family_fits import FamilyStore
from triage.store.feedback import FeedbackStore
from triage.store.parameters import ParameterStore

pytestmark = pytest.mark.integration


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def alert(seconds: float, id: str, service: str, name: str, fingerprint: str, **extra: Any) -> Any:
    return make_event(seconds, id=id, service=service, fingerprint=fingerprint, title=f"{name} on {service}",
                      labels={"alertname": name, "service": service}, **extra)


def pagerduty(store: SqlStore, id: str, event_type: str, seconds: float, incident: str, *, agent: str | None,
              assignee: str | None = None) -> None:
    """A PagerDuty v3 webhook's feedback as the webhook route stores it."""
    document: dict[str, Any] = {"event_type": event_type, "incident_key": incident,
                                "agent": {"type": "user_reference", "email": agent} if agent
                                else {"type": "service_reference", "name": "triage"}}
    if assignee:
        document["assignees"] = [{"id": "P1", "name": assignee.split("@")[0], "type": "user_reference",
                                  "email": assignee}]
    FeedbackStore(store.engine).add(id=id, source="pagerduty", event_type=event_type, occurred_at=at(seconds),
                                    received_at=at(seconds), document=document, external_incident_id="PD-" + incident,
                                    incident_id=incident, actor=agent or "triage")


@pytest.fixture
def scenario(store: SqlStore) -> dict[str, str]:
    """Four incidents opened on T0 (Wednesday 2026-03-11), in week 2026-03-09:

    X, checkout: a log at -30 s, then CheckoutDown fires at 0 (paged at 0) and joins it,
       CheckoutErrors at 350 joins (a page update: group_interval 300). Paged to alice
       (PagerDuty's assignee), who acknowledges at 120 and resolves at 900.
    Y, payments: PaymentsDown at 100 (paged at 100); bob records the resolution through the
       feedback API, resolved at 700 (no acknowledgement: his resolve counts as it).
    Z, frontend: FrontendLatency at 200 (paged at 200); nothing ever comes back.
    W, search: with auto_pause 300, FrontendFlap fires at 1000 and resolves at 1030: transient.

    MTTD: X 30 (the log), Y 0, Z 0 -> 10 s over 3, lacking W. MTTA: X 120, Y 600 -> 360 over 2,
    lacking Z. MTTR: X 900, Y 600 -> 750 over 2, lacking Z. Pages: X 2, Y 1, Z 1 = 4, of which
    X's and Y's 3 were acted on -> precision 0.75, lacking Z (nothing came back)."""
    pipeline = Pipeline(store, EMBEDDER)
    # auto_pause 0 first: X, Y and Z page at once (the default pause, 480 s, would hold them).
    ParameterStore(store.engine).put(CorrelationParameters(auto_pause=0), author="sre", reason="page at once")
    pipeline([make_event(-30, id="l0", kind="log", source="otel", service="checkout", severity="error",
                         title="connection refused to cart", labels={}),
              alert(0, "x1", "checkout", "CheckoutDown", "fx"),
              alert(100, "y1", "payments", "PaymentsDown", "fy"),
              alert(200, "z1", "frontend", "FrontendLatency", "fz"),
              alert(200, "x1b", "checkout", "CheckoutDown", "fx"),          # a duplicate
              alert(350, "x2", "checkout", "CheckoutErrors", "fx2")])
    ParameterStore(store.engine).put(CorrelationParameters(auto_pause=300), author="sre", reason="flaps")
    pipeline([alert(1000, "w1", "search", "FrontendFlap", "fw"),
              alert(1030, "w2", "search", "FrontendFlap", "fw", status="resolved")])
    ids = {}
    for name, event in (("x", "x1"), ("y", "y1"), ("z", "z1"), ("w", "w1")):
        stored = store.get_event(event)
        assert stored is not None and stored.membership is not None
        ids[name] = stored.membership.incident_id
    assert len(set(ids.values())) == 4
    assert store.get_event("x2").membership.incident_id == ids["x"]   # type: ignore[union-attr]
    assert store.get_event("l0").membership.incident_id == ids["x"]   # type: ignore[union-attr]
    x = ids["x"]
    pagerduty(store, "pd-1", "incident.triggered", 31, x, agent=None, assignee="alice@example.com")
    pagerduty(store, "pd-2", "incident.acknowledged", 120, x, agent="alice@example.com")
    pagerduty(store, "pd-3", "incident.resolved", 900, x, agent="alice@example.com")
    return ids


@pytest.fixture
def client(store: SqlStore, scenario: dict[str, str]) -> Iterator[TestClient]:
    teams = {"checkout": "shop", "payments": "shop", "frontend": "web"}
    with TestClient(create_app(store, embedder=EMBEDDER, team_of=teams.get)) as c:
        r = c.post(f"/incidents/{scenario['y']}/resolution",
                   json={"responder": "bob", "note": "restarted", "resolved_at": at(700).isoformat()})
        assert r.status_code in (200, 201), r.text
        yield c


def figure(body: dict[str, Any]) -> tuple[Any, int, int]:
    value = body["value"]
    return (round(value, 6) if value is not None else None), body["incidents"], body["lacking"]


def test_figures_from_pages_and_feedback(client: TestClient, scenario: dict[str, str]) -> None:
    body = client.get("/stats/oncall", params={"since": at(-3600).isoformat(), "until": at(3600).isoformat()}).json()
    total = body["total"]
    assert (total["incidents"], total["paged"], total["pages"], total["transient"], total["held"]) == (4, 3, 4, 1, 0)
    assert figure(total["mttd_s"]) == (10.0, 3, 1)
    assert figure(total["mtta_s"]) == (360.0, 2, 1)
    assert figure(total["mttr_s"]) == (750.0, 2, 1)
    assert figure(total["alert_precision"]) == (0.75, 3, 1)
    assert "acknowledged" in total["mtta_s"]["source"] and "first event" in total["mttd_s"]["source"]

    assert [(g["key"], g["figures"]["pages"]) for g in body["groups"]] == \
        [("checkout", 2), ("frontend", 1), ("payments", 1), ("search", 0)]
    checkout = body["groups"][0]["figures"]
    assert figure(checkout["mtta_s"]) == (120.0, 1, 0) and figure(checkout["mttd_s"]) == (30.0, 1, 0)

    assert [(p["week"], p["person"], p["pages"], p["incidents"]) for p in body["pages_per_person"]] == [
        ("2026-03-09", "alice@example.com", 2, 1), ("2026-03-09", "bob", 1, 1), ("2026-03-09", None, 1, 1)]
    assert body["persons_lacking"] == 1
    assert [(r["rule"], r["pages"], r["not_acted_on"], r["transient"]) for r in body["noisy_rules"]] == [
        ("FrontendLatency", 1, 1, 0), ("CheckoutDown", 1, 0, 0), ("CheckoutErrors", 1, 0, 0),
        ("PaymentsDown", 1, 0, 0), ("FrontendFlap", 0, 0, 1)]
    assert body["recurring_causes"] == [] and body["families_version"] is None

    # The window is on the incidents' opening: W (opened at 1000 s) alone.
    late = client.get("/stats/oncall", params={"since": at(500).isoformat()}).json()["total"]
    assert (late["incidents"], late["paged"], late["transient"]) == (1, 0, 1)
    assert figure(late["alert_precision"]) == (None, 0, 0)


def test_by_team_through_the_mapping_and_422_without_one(store: SqlStore, client: TestClient) -> None:
    body = client.get("/stats/oncall", params={"by": "team"}).json()
    assert body["by"] == "team"
    assert [(g["key"], g["figures"]["incidents"], g["figures"]["pages"]) for g in body["groups"]] == [
        ("shop", 2, 3), ("web", 1, 1), ("(no team)", 1, 0)]
    assert figure(body["groups"][0]["figures"]["mttr_s"]) == (750.0, 2, 0)
    with TestClient(create_app(store, embedder=EMBEDDER)) as plain:
        r = plain.get("/stats/oncall", params={"by": "team"})
        assert r.status_code == 422 and "team" in r.json()["detail"] and "by=service" in r.json()["detail"]
        assert plain.get("/stats/oncall", params={"by": "owner"}).status_code == 422


def test_recurring_causes_are_the_alert_families_of_first_alerts(
        store: SqlStore, client: TestClient, scenario: dict[str, str]) -> None:
    """X's and Y's first alerts in family 7 (two incidents: recurring), Z's in family 8 (one: not)."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.memberships.c.event_id, t.memberships.c.template_id, t.incidents.c.profile)
                            .select_from(t.memberships.join(t.incidents,
                                                            t.incidents.c.id == t.memberships.c.incident_id))
                            .where(t.memberships.c.event_id.in_(["x1", "y1", "z1"]))).all()
    text = {r.event_id: r.profile["templates"][r.template_id] for r in rows}
    families = TemplateFamilies(members={text["x1"]: 7, text["y1"]: 7, text["z1"]: 8},
                                centroids=np.zeros((2, 384), dtype=np.float32), ids=(7, 8))
    version = FamilyStore(store.engine).save(families, [], fitted_at=datetime.now(timezone.utc), fitted_by="test",
                                             templates=3, next_id=9)
    body = client.get("/stats/oncall").json()
    assert body["families_version"] == version
    assert [(c["family"], c["incidents"], c["pages"], c["acted_on"]) for c in body["recurring_causes"]] == [(7, 2, 3, 2)]
    assert body["recurring_causes"][0]["example"] in ("CheckoutDown", "PaymentsDown")


def test_the_last_weeks_figures_are_gauges_for_the_dashboard(store: SqlStore, client: TestClient) -> None:
    """The collector serves the figures of its last refresh and refreshes in a thread of
    its own; a store that fails is shown as the oncall-figures component."""
    from prometheus_client import CollectorRegistry, generate_latest

    from triage.services.oncall_metrics import COMPONENT, OncallCollector

    registry = CollectorRegistry()
    collector = OncallCollector(store.engine, now=lambda: at(3600))   # a week back covers T0
    registry.register(collector)
    generate_latest(registry)   # the first scrape starts the first refresh
    assert collector.refreshed.wait(60)
    text = generate_latest(registry).decode()
    for line in ("triage_oncall_mttd_seconds 10.0", "triage_oncall_mtta_seconds 360.0",
                 "triage_oncall_mttr_seconds 750.0", "triage_oncall_alert_precision_ratio 0.75",
                 "triage_oncall_pages 4.0", "triage_oncall_paged_incidents 3.0",
                 "triage_oncall_unacknowledged_incidents 1.0", "triage_oncall_figures_up 1.0"):
        assert line in text.splitlines(), line

    broken = OncallCollector(sa.create_engine("sqlite:////nonexistent/dir/triage.db"))
    list(broken.collect())
    assert broken.refreshed.wait(60)
    [state] = [s for s in broken.health.states() if s.name == COMPONENT]
    assert not state.ok and "OperationalError" in state.reason
    gauges = {f.name: f.samples for f in broken.collect()}
    assert gauges["triage_oncall_figures_up"][0].value == 0.0 and gauges["triage_oncall_mtta_seconds"] == []
    # the API's own /metrics exports the names, whatever the store holds
    assert "# TYPE triage_oncall_mtta_seconds gauge" in client.get("/metrics").text
