"""A responder merges incidents through the API; the consumer carries on with one (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER, make_event
from triage.api import create_app
from triage.models.parameters import CorrelationParameters
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store.feedback import feedback
from triage.store.schema import outbox

TARGETS = ["webhook"]


@pytest.fixture
def pipeline(store: SqlStore) -> Pipeline:
    # auto_pause 0: the first pages go out at once (the pause has its own tests)
    return Pipeline(store, EMBEDDER, page_targets=TARGETS, parameters=CorrelationParameters(auto_pause=0))


@pytest.fixture
def ids(store: SqlStore, pipeline: Pipeline) -> dict[str, str]:
    """Two incidents the engine kept apart (no known relation between the services), both paged."""
    pipeline([
        make_event(0, id="a1", fingerprint="fa", service="cartservice", title="Redis connection refused",
                   labels={"alertname": "RedisDown"}),
        make_event(10, id="b1", fingerprint="fb", service="frontend", title="Checkout latency above SLO",
                   labels={"alertname": "CheckoutLatency"}),
        make_event(20, id="b2", kind="log", source="otel", service="frontend", severity="error",
                   title="checkout timed out after 5000 ms"),
    ])
    a, b = (store.get_event(e) for e in ("a1", "b1"))
    assert a is not None and b is not None and a.membership and b.membership
    assert a.membership.incident_id != b.membership.incident_id
    return {"a": a.membership.incident_id, "b": b.membership.incident_id}


@pytest.fixture
def client(store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, embedder=EMBEDDER, page_targets=TARGETS)) as c:
        yield c


def test_merge_moves_events_resolves_the_merged_page_and_later_events_follow(
        client: TestClient, store: SqlStore, pipeline: Pipeline, ids: dict[str, str]) -> None:
    a, b = ids["a"], ids["b"]
    assert client.get("/stats/noise").json()["total"]["incidents"] == 2
    r = client.post(f"/incidents/{a}/merge", json={"incidents": [b], "author": "dana", "reason": "one outage"})
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["event_count"] == 3 and merged["alert_count"] == 2 and merged["firing_alerts"] == 2
    assert merged["services"] == ["cartservice", "frontend"] and merged["merged_into"] is None

    gone = client.get(f"/incidents/{b}").json()
    assert gone["status"] == "merged" and gone["merged_into"] == a and gone["events"] == []
    events = {e["event"]["id"]: e["membership"] for e in client.get(f"/incidents/{a}").json()["events"]}
    assert set(events) == {"a1", "b1", "b2"}
    assert events["b1"]["rule"] == "merged" and events["b1"]["action"] == "attached"
    assert events["b1"]["explanation"].startswith(f"merged by dana from {b}: one outage (before: opened")
    assert events["b2"]["incident_id"] == a
    assert client.get("/stats/noise").json()["total"]["incidents"] == 1   # what dashboards count
    with store.engine.connect() as conn:
        owed = conn.execute(sa.select(outbox.c.incident_id, outbox.c.action)).all()
        audit = conn.execute(sa.select(feedback.c.event_type, feedback.c.actor, feedback.c.incident_id)).all()
    assert (b, "resolve") in owed and (a, "resolve") not in owed
    assert audit == [("triage.merge", "dana", a)]

    # The consumer's next batch sees one incident: the merged alert resolves there, and the
    # incident resolves only when the alerts of both have.
    pipeline([make_event(60, id="b-res", fingerprint="fb", service="frontend", status="resolved",
                         title="Checkout latency above SLO", labels={"alertname": "CheckoutLatency"})])
    resolved = store.get_event("b-res")
    assert resolved is not None and resolved.membership is not None
    assert resolved.membership.incident_id == a and resolved.membership.rule == "alert_resolved"
    assert client.get(f"/incidents/{a}").json()["status"] == "open"
    pipeline([make_event(70, id="a-res", fingerprint="fa", service="cartservice", status="resolved",
                         title="Redis connection refused", labels={"alertname": "RedisDown"})])
    assert client.get(f"/incidents/{a}").json()["status"] == "resolved"


def test_merges_that_make_no_sense_are_refused_and_change_nothing(
        client: TestClient, store: SqlStore, ids: dict[str, str]) -> None:
    a, b = ids["a"], ids["b"]

    def merge(into: str, body: dict[str, object]) -> tuple[int, str]:
        r = client.post(f"/incidents/{into}/merge", json={"author": "dana", **body})
        return r.status_code, str(r.json().get("detail", ""))

    assert merge("nope", {"incidents": [b]}) == (404, "no incident 'nope'")
    assert merge(a, {"incidents": ["nope"]}) == (404, "no incident 'nope'")
    assert merge("nope", {"incidents": ["nope2"]}) == (404, "no incident 'nope'")
    assert merge(a, {"incidents": [a]})[0] == 409
    assert merge(a, {"incidents": [b, b]})[0] == 409
    assert merge(a, {"incidents": []})[0] == 422
    assert merge(a, {"incidents": [b], "why": "x"})[0] == 422
    assert client.get(f"/incidents/{b}").json()["status"] == "open"
    assert merge(a, {"incidents": [b]})[0] == 200
    status, detail = merge(b, {"incidents": [a]})
    assert status == 409 and detail == f"{b} was already merged into {a}"


def test_a_split_undoes_a_wrong_merge_and_later_events_follow_the_split_alert(
        client: TestClient, store: SqlStore, pipeline: Pipeline, ids: dict[str, str]) -> None:
    a, b = ids["a"], ids["b"]
    client.post(f"/incidents/{a}/merge", json={"incidents": [b], "author": "dana"})
    r = client.post(f"/incidents/{a}/split", json={"events": ["b2", "b1"], "author": "lee", "reason": "not redis"})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["id"] not in (a, b) and new["status"] == "open" and new["services"] == ["frontend"]
    assert (new["event_count"], new["alert_count"], new["firing_alerts"]) == (2, 1, 1)
    assert new["title"] == "Checkout latency above SLO"
    left = client.get(f"/incidents/{a}").json()
    assert [e["event"]["id"] for e in left["events"]] == ["a1"] and left["services"] == ["cartservice"]
    assert (left["event_count"], left["firing_alerts"]) == (1, 1)
    assert client.get("/incidents", params={"service": "frontend"}).json()["total"] == 2   # b (merged) and new
    moved = {e["event"]["id"]: e["membership"] for e in client.get(f"/incidents/{new['id']}").json()["events"]}
    assert moved["b1"]["rule"] == "split" and moved["b1"]["action"] == "opened"
    assert moved["b1"]["explanation"].startswith(f"split by lee from {a}: not redis (before: merged by dana")
    assert client.get("/stats/noise").json()["total"]["incidents"] == 2

    pipeline([make_event(60, id="b-res", fingerprint="fb", service="frontend", status="resolved",
                         title="Checkout latency above SLO", labels={"alertname": "CheckoutLatency"})])
    assert client.get(f"/incidents/{new['id']}").json()["status"] == "resolved"
    assert client.get(f"/incidents/{a}").json()["status"] == "open"


def test_splits_that_make_no_sense_are_refused_and_change_nothing(
        client: TestClient, ids: dict[str, str]) -> None:
    a, b = ids["a"], ids["b"]

    def split(incident: str, events: list[str]) -> tuple[int, str]:
        r = client.post(f"/incidents/{incident}/split", json={"events": events, "author": "lee"})
        return r.status_code, str(r.json().get("detail", ""))

    assert split("nope", ["b1"]) == (404, "no incident 'nope'")
    assert split(b, ["a1"]) == (409, f"event 'a1' is not in incident {b}")
    assert split(b, ["b1", "b2"]) == (409, "a split must leave the incident at least one event")
    assert split(b, [])[0] == 422
    assert client.get(f"/incidents/{b}").json()["event_count"] == 2
    client.post(f"/incidents/{a}/merge", json={"incidents": [b], "author": "dana"})
    assert split(b, ["b1"]) == (409, f"{b} was merged into {a}")


def test_merging_a_paged_incident_into_one_that_never_paged_moves_the_page(
        client: TestClient, store: SqlStore, pipeline: Pipeline, ids: dict[str, str]) -> None:
    pipeline([make_event(30, id="n1", kind="log", source="otel", service="paymentservice", severity="error",
                         title="card declined by issuer")])
    noise = store.get_event("n1")
    assert noise is not None and noise.membership is not None
    quiet, b = noise.membership.incident_id, ids["b"]
    r = client.post(f"/incidents/{quiet}/merge", json={"incidents": [b], "author": "dana"})
    assert r.status_code == 200 and r.json()["title"] == "Checkout latency above SLO"   # now an incident
    with store.engine.connect() as conn:
        owed = set(conn.execute(sa.select(outbox.c.incident_id, outbox.c.action)).all())
    assert {(b, "resolve"), (quiet, "trigger")} <= owed
