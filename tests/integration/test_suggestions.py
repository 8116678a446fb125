"""Suggested responders and remediations from similar past incidents, through the store,
the API and the page, with the real sentence model (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER, make_event
from tests.unit.test_webhooks import PD_WEBHOOK_INCIDENT
from triage.api import create_app
from triage.ingest.webhooks import from_pagerduty_webhook
from triage.models.recommender import Resolution
from triage.paging.compose import incident_document
from triage.services.pipeline import Pipeline
from triage.store import IncidentQuery, SqlStore
from triage.store.feedback import FeedbackStore
from triage.services.suggestions import SuggestionService

DAY = 86_400.0
REDIS = "Redis connection refused: redis-cart:6379"


@pytest.fixture
def incidents(store: SqlStore) -> dict[str, str]:
    """Three incidents: the same Redis problem on two days, and a DNS failure."""
    Pipeline(store, EMBEDDER)([
        make_event(0, id="r1", fingerprint="r1", service="cartservice", title=REDIS),
        make_event(DAY, id="r2", fingerprint="r2", service="cartservice", title=REDIS),
        make_event(DAY + 3600, id="d1", fingerprint="d1", service="frontend",
                   title="DNS lookup of productcatalogservice failed: no such host"),
    ])
    by_first = {}
    for record in store.list_incidents(IncidentQuery(limit=10)).items:
        [first] = store.incident_events(record.id, limit=1)
        by_first[first.event.id] = record.id
    assert set(by_first) == {"r1", "r2", "d1"}
    return by_first


@pytest.fixture
def client(store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, embedder=EMBEDDER)) as c:
        yield c


def test_a_recorded_resolution_is_suggested_for_the_next_similar_incident(
        client: TestClient, incidents: dict[str, str]) -> None:
    first, second, dns = incidents["r1"], incidents["r2"], incidents["d1"]
    assert client.get(f"/incidents/{second}").json()["suggested_responders"] == []   # nothing learned yet
    r = client.post(f"/incidents/{first}/resolution",
                    json={"responder": "amara.ruiz", "note": "Restarted redis-cart; raised maxclients"})
    assert r.status_code == 201 and r.json()["responder"] == "amara.ruiz"

    detail = client.get(f"/incidents/{second}").json()
    [similar] = detail["similar_past_incidents"]
    assert similar["incident_id"] == first and similar["similarity"] > 0.99
    assert similar["services"] == ["cartservice"] and similar["responder"] == "amara.ruiz"
    assert [s["responder"] for s in detail["suggested_responders"]] == ["amara.ruiz"]
    assert detail["suggested_remediations"] == [
        {"remediation": "Restarted redis-cart; raised maxclients", "from_incident": first,
         "similarity": similar["similarity"]}]
    # An unrelated problem gets nothing, and an incident is never similar to itself.
    assert client.get(f"/incidents/{dns}").json()["similar_past_incidents"] == []
    assert client.get(f"/incidents/{first}").json()["similar_past_incidents"] == []

    # A later resolution of the same incident replaces the first.
    client.post(f"/incidents/{first}/resolution", json={"responder": "lea.sato"})
    assert [s["responder"] for s in client.get(f"/incidents/{second}").json()["suggested_responders"]] == ["lea.sato"]


@pytest.mark.parametrize("body,field", [
    ({"note": "no responder"}, ["body", "responder"]),
    ({"responder": ""}, ["body", "responder"]),
    ({"responder": "x", "team": "cart"}, ["body", "team"]),
    ({"responder": "x", "resolved_at": "2026-03-11T10:00:00"}, ["body", "resolved_at"]),
])
def test_a_bad_resolution_gets_422_naming_the_field_and_stores_nothing(
        client: TestClient, store: SqlStore, incidents: dict[str, str], body: dict[str, object],
        field: list[str]) -> None:
    r = client.post(f"/incidents/{incidents['r1']}/resolution", json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == field
    assert FeedbackStore(store.engine).resolutions() == {}
    assert client.post("/incidents/nope/resolution", json={"responder": "x"}).status_code == 404


def _pagerduty(event_id: str, event_type: str, agent_type: str, **data: object) -> dict[str, object]:
    body = copy.deepcopy(PD_WEBHOOK_INCIDENT)
    body["event"].update(id=event_id, event_type=event_type, occurred_at="2026-03-12T15:00:00Z")
    body["event"]["agent"]["type"] = agent_type
    body["event"]["data"].update(data)
    return body


def test_pagerduty_feedback_teaches_who_acknowledged_and_the_note_but_not_an_automatic_resolve(
        store: SqlStore, incidents: dict[str, str]) -> None:
    first = incidents["r1"]
    feedback = FeedbackStore(store.engine)
    now = datetime.now(timezone.utc)
    for body in (
        _pagerduty("pd-1", "incident.acknowledged", "user_reference", incident_key=first),
        # triage's own resolve event resolved it: PagerDuty names the service as the agent
        _pagerduty("pd-2", "incident.resolved", "service_reference", incident_key=first, status="resolved"),
    ):
        assert feedback.add_pagerduty(from_pagerduty_webhook(body, received_at=now), now)
    note = copy.deepcopy(PD_WEBHOOK_INCIDENT)
    note["event"].update(id="pd-3", event_type="incident.annotated", data={
        "incident": {"id": PD_WEBHOOK_INCIDENT["event"]["data"]["id"], "type": "incident_reference"},
        "id": "PNOTE1", "content": "Flushed the connection pool", "type": "incident_note"})
    feedback.add_pagerduty(from_pagerduty_webhook(note, received_at=now), now)   # names PagerDuty's id only

    assert feedback.resolutions() == {first: Resolution("Dana Okafor", "Flushed the connection pool", None)}

    # ... and the page for the next such incident carries it.
    second = incidents["r2"]
    record = store.get_incident(second)
    assert record is not None
    page = incident_document(record, store.incident_events(second), "http://triage.test",
                             SuggestionService(store).for_incident(second))
    assert [s["incident_id"] for s in page["similar_past_incidents"]] == [first]
    assert page["suggested_responders"][0]["responder"] == "Dana Okafor"
    assert page["suggested_remediations"][0]["remediation"] == "Flushed the connection pool"
