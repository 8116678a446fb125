"""Changes in through the real API, broker and consumer into the ``changes`` table: the
change webhook, PagerDuty change events (answered as PagerDuty does), rollout logs on the
logs topic, and an OpenTelemetry resource whose service.version changed. A change pages
nobody and joins no incident."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from tests.integration.kafka_helpers import event_json, produce, running, wait_for
from tests.unit.test_change_webhooks import PD_CHANGE
from triage.broker import EmbeddedBroker
from triage.domain.change import ChangeKind
from triage.service import Runtime
from triage.store import IncidentQuery
from triage.store.api_keys import ApiKeyStore, Scope
from triage.store.changes import ChangeStore

pytestmark = pytest.mark.integration


@pytest.fixture
def runtime(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Runtime]:
    with running(broker.bootstrap_servers, tmp_path / "c.db") as rt:
        yield rt


@pytest.fixture
def api(runtime: Runtime) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{runtime.api_port}", timeout=30) as client:
        yield client


def changes(runtime: Runtime) -> ChangeStore:
    return ChangeStore(runtime.store.engine)


def test_the_change_webhook_goes_through_kafka_into_the_changes_table(runtime: Runtime, api: httpx.Client) -> None:
    body = [{"id": "deploy-4711", "service": "cartservice", "kind": "deploy", "occurred_at": "2026-03-11T13:50:00Z",
             "description": "cartservice v1.9.0 rolled out", "version": "v1.9.0", "previous_version": "v1.8.9",
             "who": "ci-bot", "link": "https://ci.example/run/4711", "source": "argo-cd"},
            {"service": "redis-cart", "kind": "config", "occurred_at": "2026-03-11T13:55:00Z",
             "description": "maxmemory 2gb -> 4gb"}]
    r = api.post("/webhooks/change", json=body)
    assert r.status_code == 202, r.text
    ids = r.json()["event_ids"]
    assert r.json()["accepted"] == 2 and ids[0] == "deploy-4711"
    assert api.post("/webhooks/change", json=body).json()["event_ids"] == ids   # a retry: the same changes
    wait_for(lambda: len(changes(runtime).changes_near(None)) == 2, 30, "2 changes stored")
    deploy = changes(runtime).get("deploy-4711")
    assert deploy is not None
    assert (deploy.service, deploy.kind, deploy.version, deploy.previous_version, deploy.who, deploy.source) == \
        ("cartservice", ChangeKind.deploy, "v1.9.0", "v1.8.9", "ci-bot", "argo-cd")
    assert deploy.occurred_at == datetime(2026, 3, 11, 13, 50, tzinfo=timezone.utc)
    near = changes(runtime).changes_near({"redis-cart"}, datetime(2026, 3, 11, 13, 52, tzinfo=timezone.utc),
                                         datetime(2026, 3, 11, 14, 0, tzinfo=timezone.utc))
    assert [c.id for c in near] == [ids[1]]
    # never an event, an incident or a page
    assert runtime.store.count_events() == 0
    assert runtime.store.list_incidents(IncidentQuery(kind=None)).total == 0
    listed = api.get("/changes", params={"service": "cartservice"}).json()
    assert [c["id"] for c in listed] == ["deploy-4711"] and listed[0]["summary"] == "cartservice v1.9.0 rolled out"
    r = api.post("/webhooks/change", json={"service": "cartservice"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "description"]


def test_pagerduty_change_events_are_answered_as_pagerduty_does(runtime: Runtime, api: httpx.Client) -> None:
    r = api.post("/v2/change/enqueue", json=PD_CHANGE)
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "success", "message": "Change event processed"}
    wait_for(lambda: len(changes(runtime).changes_near(None)) == 1, 30, "the change stored")
    [change] = changes(runtime).changes_near(None)
    assert change.source == "pagerduty" and change.link == "https://acme.pagerduty.dev/build/2"
    bad = api.post("/v2/change/enqueue", json={"routing_key": "k", "payload": {}})
    assert bad.status_code == 422
    assert bad.json()["status"] == "invalid event" and "payload.summary" in bad.json()["errors"][0]
    # with keys in use, the routing key is an ingest key, as for alert events
    _, token = ApiKeyStore(runtime.store.engine).create("ci", {Scope.ingest})
    assert api.post("/v2/change/enqueue", json={**PD_CHANGE, "routing_key": "wrong"}).status_code == 401
    assert api.post("/v2/change/enqueue", json={**PD_CHANGE, "routing_key": token}).status_code == 202


def test_rollout_logs_on_the_logs_topic_become_changes_and_join_no_incident(runtime: Runtime,
                                                                            broker: EmbeddedBroker) -> None:
    s = runtime.settings
    rollout = event_json(id="bsevt-0000008", kind="log", source="otel", occurred_at="2026-03-11T14:00:00Z",
                         service="adservice", severity="info", title="Deployment adservice rolled out v1.8.6",
                         body="deployment.apps/adservice image updated to x/adservice:v1.8.6 (was v1.8.5)",
                         labels={"event.type": "deployment", "k8s.deployment.name": "adservice",
                                 "version": "v1.8.6"})
    produce(broker.bootstrap_servers, s.topic_logs, [
        rollout,
        event_json(id="err-1", kind="log", source="otel", occurred_at="2026-03-11T14:01:00Z", service="adservice",
                   severity="error", title="panic: nil pointer dereference"),
    ], key=lambda _: b"global")
    produce(broker.bootstrap_servers, s.topic_alerts, [
        event_json(id="alert-1", occurred_at="2026-03-11T14:02:00Z", service="adservice", fingerprint="f1")],
        key=lambda _: b"global")
    wait_for(lambda: runtime.store.count_events() == 2 and changes(runtime).get("bsevt-0000008") is not None,
             30, "two events and the change")
    change = changes(runtime).get("bsevt-0000008")
    assert change is not None and (change.kind, change.service, change.version) == \
        (ChangeKind.deploy, "adservice", "v1.8.6")
    assert runtime.store.get_event("bsevt-0000008") is None          # a change, not an event
    [incident] = runtime.store.list_incidents(IncidentQuery()).items
    assert {e.event.id for e in runtime.store.incident_events(incident.id)} == {"err-1", "alert-1"}
    # the same record again (a redelivery, a replay) is the same change
    produce(broker.bootstrap_servers, s.topic_logs, [rollout], key=lambda _: b"global")
    produce(broker.bootstrap_servers, s.topic_alerts, [event_json(id="alert-2", occurred_at="2026-03-11T14:03:00Z",
                                                                  service="adservice", fingerprint="f2")],
            key=lambda _: b"global")
    wait_for(lambda: runtime.store.count_events() == 3, 30, "the next event")
    assert [c.id for c in changes(runtime).changes_near({"adservice"})] == ["bsevt-0000008"]


def otlp_log(version: str, at: datetime, text: str) -> bytes:
    """One OTLP/JSON log record of cartservice, as the Collector's Kafka exporter writes it."""
    return json.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cartservice"}},
                                    {"key": "service.version", "value": {"stringValue": version}}]},
        "scopeLogs": [{"scope": {"name": "cart"}, "logRecords": [{
            "timeUnixNano": str(int(at.timestamp() * 1e9)), "severityNumber": 9, "severityText": "INFO",
            "body": {"stringValue": text}}]}]}]}).encode()


def test_a_resource_reporting_a_new_service_version_is_a_deploy(runtime: Runtime, broker: EmbeddedBroker) -> None:
    s = runtime.settings
    t = [datetime(2026, 3, 11, 14, minute, tzinfo=timezone.utc) for minute in range(6)]
    produce(broker.bootstrap_servers, s.topic_logs, [otlp_log("1.4.0", t[0], "started"),
                                                     otlp_log("1.4.0", t[1], "cart updated")],
            key=lambda _: b"global")
    wait_for(lambda: runtime.store.count_events() == 2, 30, "the first logs")
    assert changes(runtime).changes_near(None) == []     # a first version is learned, not a change
    produce(broker.bootstrap_servers, s.topic_logs, [otlp_log("1.5.0", t[3], "started"),
                                                     otlp_log("1.4.0", t[4], "an old pod still answers"),
                                                     otlp_log("1.5.0", t[5], "cart updated")],
            key=lambda _: b"global")   # keyed by scope, as producers should: read in event time
    wait_for(lambda: runtime.store.count_events() == 5, 30, "the next logs")
    [deploy] = changes(runtime).changes_near({"cartservice"})
    assert (deploy.kind, deploy.version, deploy.previous_version, deploy.source, deploy.occurred_at) == \
        (ChangeKind.deploy, "1.5.0", "1.4.0", "otel", t[3])
    assert deploy.description == "cartservice reports version 1.5.0 (was 1.4.0)"
