"""Webhooks through the real API, the real broker and the consumer into the store; API keys."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.kafka_helpers import event_json, produce, running, wait_for
from tests.unit.test_webhooks import ALERTMANAGER, PD_TRIGGER, PD_WEBHOOK_INCIDENT
from triage.broker import EmbeddedBroker
from triage.service import Runtime
from triage.store.feedback import FeedbackStore
from triage.store.api_keys import ApiKeyStore, Scope

pytestmark = pytest.mark.integration
SECRET = "whsec-test-1"


@pytest.fixture
def runtime(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Runtime]:
    with running(broker.bootstrap_servers, tmp_path / "w.db", pagerduty_webhook_secrets=f"old-secret,{SECRET}",
                 max_body_bytes=64 * 1024) as rt:
        yield rt


@pytest.fixture
def api(runtime: Runtime) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{runtime.api_port}", timeout=30) as client:
        yield client


def test_alertmanager_group_arrives_with_its_fingerprints(runtime: Runtime, api: httpx.Client) -> None:
    r = api.post("/webhooks/alertmanager", json=ALERTMANAGER)
    assert r.status_code == 202, r.text
    ids = r.json()["event_ids"]
    assert r.json()["accepted"] == 3
    wait_for(lambda: runtime.store.count_events() == 3, 30, "3 events stored")
    stored = [runtime.store.get_event(i) for i in ids]
    assert {s.event.fingerprint for s in stored if s} == {"5d1c0a9e7b3f2468", "385909ed4d2d6b07", "37dcc2557b77f17d"}
    assert {s.event.status.value for s in stored if s} == {"firing", "resolved"}


def test_bad_bodies_get_4xx_naming_the_problem_and_store_nothing(runtime: Runtime, api: httpx.Client) -> None:
    r = api.post("/webhooks/alertmanager", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["msg"].startswith("malformed JSON")
    bad = copy.deepcopy(ALERTMANAGER)
    bad["alerts"][1]["labels"]["severity"] = "apocalyptic"
    r = api.post("/webhooks/alertmanager", json=bad)
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert "apocalyptic" in detail["msg"] and detail["loc"][:3] == ["body", "alerts", 1]
    too_long = {"kind": "alert", "source": "ci", "occurred_at": "2026-03-11T14:00:00Z", "severity": "critical",
                "title": "disk full", "fingerprint": "f" * 301}   # longer than the store's column
    r = api.post("/webhooks/generic", json=too_long)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "fingerprint"
    r = api.post("/webhooks/generic", content=b"x" * (65 * 1024))
    assert r.status_code == 413
    chunked = api.post("/webhooks/generic", content=iter([b"[", b" " * (65 * 1024), b"]"]))
    assert chunked.status_code == 413
    assert runtime.store.count_events() == 0


def test_pagerduty_enqueue_answers_like_pagerduty_and_keeps_the_routing_key_secret(
        runtime: Runtime, api: httpx.Client) -> None:
    r = api.post("/v2/enqueue", json=PD_TRIGGER)
    assert r.status_code == 202
    assert r.json() == {"status": "success", "message": "Event processed", "dedup_key": "orders-db-replication-lag"}
    wait_for(lambda: runtime.store.count_events() == 1, 30, "the PagerDuty event")
    [incident] = api.get("/incidents").json()["items"]
    detail = api.get(f"/incidents/{incident['id']}").text
    assert PD_TRIGGER["routing_key"] not in detail
    assert api.post("/webhooks/pagerduty/events", json={**PD_TRIGGER, "event_action": "resolve"}).status_code == 202


def test_api_keys_scopes(runtime: Runtime, api: httpx.Client) -> None:
    keys = ApiKeyStore(runtime.store.engine)
    _, reader = keys.create("dashboards", {Scope.read})
    _, ingester = keys.create("alertmanager", {Scope.ingest})
    assert api.get("/healthz").status_code == 200  # health stays open
    assert api.get("/incidents").status_code == 401   # the first key closed the API at once
    assert api.get("/incidents", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert api.get("/incidents", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    assert api.post("/webhooks/alertmanager", json=ALERTMANAGER,
                    headers={"Authorization": f"Bearer {reader}"}).status_code == 403
    assert api.post("/webhooks/alertmanager", json=ALERTMANAGER,
                    headers={"Authorization": f"Bearer {ingester}"}).status_code == 202
    # A tool configured for PagerDuty authenticates with its routing key.
    assert api.post("/v2/enqueue", json=PD_TRIGGER).status_code == 401
    assert api.post("/v2/enqueue", json={**PD_TRIGGER, "routing_key": ingester}).status_code == 202
    assert reader not in json.dumps(api.get("/incidents", headers={"Authorization": f"Bearer {reader}"}).json())


def _sign(body: bytes, secret: str) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_pagerduty_webhook_needs_a_valid_signature_and_becomes_feedback(runtime: Runtime, api: httpx.Client) -> None:
    body = json.dumps(PD_WEBHOOK_INCIDENT).encode()
    assert api.post("/webhooks/pagerduty", content=body).status_code == 401
    assert api.post("/webhooks/pagerduty", content=body,
                    headers={"X-PagerDuty-Signature": _sign(body, "wrong")}).status_code == 401
    rotated = f"{_sign(body, 'retired')},{_sign(body, SECRET)}"
    r = api.post("/webhooks/pagerduty", content=body, headers={"X-PagerDuty-Signature": rotated})
    assert r.status_code == 202 and r.json()["new"] is True
    again = api.post("/webhooks/pagerduty", content=body, headers={"X-PagerDuty-Signature": _sign(body, SECRET)})
    assert again.json()["new"] is False  # PagerDuty retries; stored once
    incident_key = PD_WEBHOOK_INCIDENT["event"]["data"]["incident_key"]
    [row] = FeedbackStore(runtime.store.engine).for_incident(incident_key)
    assert row["event_type"] == PD_WEBHOOK_INCIDENT["event"]["event_type"]


def test_a_label_named_in_the_settings_sets_the_correlation_domain(broker: EmbeddedBroker, tmp_path: Path) -> None:
    # Classic Prometheus label names cannot hold the dot of triage.domain: an estate names its
    # domains by another label (here region), and the webhook's events take it.
    with running(broker.bootstrap_servers, tmp_path / "d.db", domain_from_labels="cluster, region, pagerduty.group") \
            as rt, \
            httpx.Client(base_url=f"http://127.0.0.1:{rt.api_port}", timeout=30) as api:
        r = api.post("/webhooks/alertmanager", json=ALERTMANAGER)
        assert r.status_code == 202, r.text
        ids = r.json()["event_ids"]
        wait_for(lambda: rt.store.count_events() == 3, 30, "3 events stored")
        stored = [rt.store.get_event(i) for i in ids]
        assert [s.event.labels.get("triage.domain") for s in stored if s] == ["eu-1", None, None]
        first = stored[0]
        assert first and first.membership
        incident = rt.store.get_incident(first.membership.incident_id)
        assert incident and incident.scope == "domain:eu-1"

        too_long = copy.deepcopy(ALERTMANAGER)
        too_long["alerts"][0]["labels"]["region"] = "r" * 101
        r = api.post("/webhooks/alertmanager", json=too_long)
        assert r.status_code == 422 and "correlation domain" in r.json()["detail"][0]["msg"]
        assert r.json()["detail"][0]["loc"] == ["body", "labels"]
        pd_event = copy.deepcopy(PD_TRIGGER)
        pd_event["payload"]["group"] = "g" * 101
        r = api.post("/v2/enqueue", json=pd_event)   # answered as PagerDuty answers an invalid event
        assert r.status_code == 422 and r.json()["status"] == "invalid event"
        assert "correlation domain" in r.json()["errors"][0]
        assert rt.store.count_events() == 3

        # A producer of its own, straight into Kafka: the consumer names the domain.
        produce(broker.bootstrap_servers, rt.settings.topic_alerts,
                [event_json(id="direct-1", labels={"cluster": "us-2", "region": "eu-1"})])
        wait_for(lambda: rt.store.count_events() == 4, 30, "the produced event stored")
        direct = rt.store.get_event("direct-1")
        assert direct and direct.event.labels.get("triage.domain") == "us-2"   # the first named label
