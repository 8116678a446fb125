"""An incident's triage context (probable cause with evidence, recent changes, owner team,
responders, remediations, similar incidents) through the real store (SQLite and
PostgreSQL), the real sentence model, the API and the page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER, T0, make_event
from triage.api import create_app
from triage.domain.change import Change, ChangeKind, change_as_event
from triage.domain.event import Event
from triage.models.catalog import Catalog
from triage.paging.compose import incident_document, pagerduty_event
from triage.services.pipeline import Pipeline
from triage.services.triage_context import TriageContextService
from triage.store import IncidentQuery, SqlStore
from triage.store.catalog import CatalogStore

pytestmark = pytest.mark.integration

DAY = 86_400.0
CATALOG = """
services:
  - service: frontend
    team: storefront
    owners: [nadia.singh]
    depends_on: [cartservice]
  - service: cartservice
    team: cart
    owners: [amara.ruiz, nadia.berg]
    depends_on: [redis-cart]
    runbooks:
      - {title: "cartservice: High 5xx error rate", url: "https://runbooks.test/cart/5xx", tags: [errors, slo]}
  - service: redis-cart
    kind: datastore
    team: cart
    owners: [amara.ruiz, nadia.berg]
    runbooks:
      - {title: "redis-cart: Datastore down", url: "https://runbooks.test/cart/redis-down", tags: [database, availability]}
teams:
  - team: cart
    members: [amara.ruiz, nadia.berg, lea.kim]
  - team: storefront
    members: [nadia.singh]
"""


def outage(start: float, tag: str) -> list[Event]:
    """redis-cart goes down; 40 s later its caller cartservice fails, then frontend."""
    def alert(seconds: float, service: str, name: str, title: str) -> Event:
        return make_event(start + seconds, id=f"{tag}-{service}", fingerprint=f"{tag}-{service}", service=service,
                          title=title, labels={"alertname": name, "service": service})
    return [alert(0, "redis-cart", "RedisDown", "Service unavailable: redis-cart"),
            alert(40, "cartservice", "IstioHigh5xxErrorRate", "Service unavailable: cartservice"),
            alert(70, "frontend", "IstioHigh5xxErrorRate", "Service unavailable: frontend")]


@pytest.fixture
def incidents(store: SqlStore) -> tuple[str, str]:
    CatalogStore(store.engine).load(Catalog.from_yaml(CATALOG), source="test")
    deploy = Change(id="chg-1", service="redis-cart", kind=ChangeKind.config, occurred_at=T0 + timedelta(seconds=DAY - 300),
                    description="maxmemory-policy set to noeviction", source="webhook", who="ci-bot",
                    link="https://ci.test/runs/42")
    # the calls seen in traces an hour before: the graph the correlator groups along
    calls = [make_event(-3600 + i, id=f"span-{callee}", kind="span", severity="info", service=callee,
                        parent_service=caller, title=f"{caller} -> {callee}", labels={})
             for i, (caller, callee) in enumerate((("frontend", "cartservice"), ("cartservice", "redis-cart")))]
    Pipeline(store, EMBEDDER)([*calls, *outage(0, "a"), change_as_event(deploy), *outage(DAY, "b")])
    held = {r.id: {s.event.id for s in store.incident_events(r.id)}
            for r in store.list_incidents(IncidentQuery(limit=10)).items}
    [first] = [i for i, events in held.items() if "a-redis-cart" in events]
    [second] = [i for i, events in held.items() if "b-redis-cart" in events]
    assert held[first] == {"a-redis-cart", "a-cartservice", "a-frontend"}, held
    assert held[second] == {"b-redis-cart", "b-cartservice", "b-frontend"}, held
    return first, second


@pytest.fixture
def client(store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, embedder=EMBEDDER)) as c:
        yield c


def test_an_incident_carries_its_probable_cause_owner_changes_responders_remediations_and_similar_incidents(
        client: TestClient, store: SqlStore, incidents: tuple[str, str]) -> None:
    first, second = incidents
    day_one = client.get(f"/incidents/{first}").json()["triage"]
    # Day one, from the catalog alone: the cause, its team and owners, its runbook.
    [cause, *others] = day_one["probable_cause"]
    assert cause["component"] == "redis-cart" and cause["type"] == "datastore"
    assert "first error 40 s before cartservice, which calls it" in cause["evidence"]
    assert cause["confidence"] > max(o["confidence"] for o in others)
    assert day_one["owner_team"] == "cart" and day_one["owner_team_evidence"] == "owns redis-cart in the catalog"
    assert [r["person"] for r in day_one["responders"]][:2] == ["amara.ruiz", "nadia.berg"]
    assert "owner of redis-cart" in day_one["responders"][0]["evidence"]
    assert day_one["remediations"][0]["url"] == "https://runbooks.test/cart/redis-down"
    assert day_one["similar_incidents"] == [] and day_one["recent_changes"] == []

    r = client.post(f"/incidents/{first}/resolution",
                    json={"responder": "lea.kim", "note": "restarted redis-cart, raised maxclients",
                          "resolved_at": (T0 + timedelta(hours=1)).isoformat()})
    assert r.status_code == 201
    later = client.get(f"/incidents/{second}").json()["triage"]
    assert later["probable_cause"][0]["component"] == "redis-cart"
    [similar] = later["similar_incidents"]
    assert similar["incident_id"] == first and similar["responder"] == "lea.kim"
    assert "same probable cause: redis-cart" in similar["evidence"]
    assert later["responders"][0]["person"] == "lea.kim"
    assert any("resolved" in e for e in later["responders"][0]["evidence"])
    assert later["remediations"][0] == {
        "text": "restarted redis-cart, raised maxclients", "source": "past_resolution", "url": None,
        "evidence": later["remediations"][0]["evidence"], "from_incident": first}
    [change] = later["recent_changes"]
    assert change["id"] == "chg-1" and change["distance"] == 0
    assert change["evidence"].startswith("redis-cart: 5 min before the incident started")
    assert any("changed 5 min before its first sign" in e for e in later["probable_cause"][0]["evidence"])

    # The page says the same: custom_details and links to the runbook, the incident and the change.
    record = store.get_incident(second)
    assert record is not None
    document = incident_document(record, store.incident_events(second), "http://triage.test",
                                 triage=TriageContextService(store).for_incident(second))
    assert [(c["component"], c["evidence"]) for c in document["triage"]["probable_cause"]] == \
        [(c["component"], c["evidence"]) for c in later["probable_cause"]]
    event = pagerduty_event("trigger", document, "key")
    details = event["payload"]["custom_details"]
    assert details["owner_team"] == "cart" and details["probable_cause"][0].startswith("redis-cart (")
    assert details["responders"][0].startswith("lea.kim (")
    hrefs = [link["href"] for link in event["links"]]
    assert hrefs[0] == f"http://triage.test/incidents/{second}"
    assert "https://runbooks.test/cart/redis-down" in hrefs and "https://ci.test/runs/42" in hrefs


def test_an_unknown_incident_has_no_context(store: SqlStore) -> None:
    assert TriageContextService(store).for_incident("nope") is None


def test_what_else_the_platform_shows_comes_from_the_store_a_node_under_pressure_and_a_zones_hosts(
        store: SqlStore) -> None:
    platform = CATALOG.replace("teams:\n", "  - {service: platform, kind: platform, team: sre, owners: [lea.sato]}\n"
                                           "teams:\n  - {team: sre, members: [lea.sato]}\n")
    CatalogStore(store.engine).load(Catalog.from_yaml(platform), source="test")

    def node(seconds: float, name: str, host: str) -> Event:
        return make_event(seconds, id=f"{name}-{host}-{seconds:.0f}", fingerprint=f"{name}-{host}", service=None,
                          host=host, title=f"{name} on {host}", labels={"alertname": name, "node": host})

    def pod(seconds: float, name: str, host: str) -> Event:
        return make_event(seconds, id=f"{name}-cart-{host}", service="cartservice", host=host,
                          title=f"{name}: cartservice on {host}", labels={"alertname": name, "service": "cartservice"})

    # node-a has been under memory pressure for 40 min when cartservice's pods are OOM-killed on it;
    # an hour later node-b and node-c, one zone's hosts, both report network receive errors
    Pipeline(store, EMBEDDER)([node(0, "KubernetesNodeMemoryPressure", "node-a"),
                               pod(2400, "KubernetesContainerOomKiller", "node-a"),
                               node(6000, "HostNetworkReceiveErrors", "node-b"),
                               node(6030, "HostNetworkReceiveErrors", "node-c")])
    of = {s.event.id: s.membership.incident_id for r in store.list_incidents(IncidentQuery(limit=10)).items
          for s in store.incident_events(r.id) if s.membership is not None}
    assert of["KubernetesContainerOomKiller-cart-node-a"] != of["KubernetesNodeMemoryPressure-node-a-0"], of
    service = TriageContextService(store, zones={"node-b": "eu-1", "node-c": "eu-1", "node-a": "eu-2"})
    oom = service.for_incident(of["KubernetesContainerOomKiller-cart-node-a"])
    assert oom is not None
    cause = oom.probable_causes[0]
    assert (cause.component, cause.type.value) == ("node-a", "host"), oom.probable_causes
    assert any(e.startswith("node alert KubernetesNodeMemoryPressure firing on it since 40 min before")
               for e in cause.evidence)
    network = service.for_incident(of["HostNetworkReceiveErrors-node-b-6000"])
    assert network is not None
    assert network.probable_causes[0].component == "eu-1", network.probable_causes
    assert network.responders.team == "sre"
