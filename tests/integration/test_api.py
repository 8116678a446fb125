"""The HTTP API over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER, make_event
from triage.api import create_app
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.models.parameters import CorrelationParameters
from triage.services.telemetry import Metrics


@pytest.fixture
def client(store: SqlStore) -> Iterator[TestClient]:
    metrics = Metrics()
    # auto_pause 0: the incident's first page is due at once (the pause has its own tests)
    Pipeline(store, EMBEDDER, metrics, parameters=CorrelationParameters(auto_pause=0))([
        make_event(0, id="a1", fingerprint="fa"), make_event(40, id="a2", fingerprint="fb", title="Latency"),
        make_event(50, id="a3", fingerprint="fa"),
        make_event(60, id="l1", kind="log", source="otel", service="payments", severity="error", title="boom"),
    ])
    with TestClient(create_app(store, embedder=EMBEDDER, registry=metrics.registry)) as c:
        yield c


def test_incident_list_filter_and_detail_with_reasons(client: TestClient) -> None:
    body = client.get("/incidents").json()   # incidents only: the log's noise group pages nobody
    assert body["total"] == 1 and body["next_offset"] is None
    [paging] = body["items"]
    assert paging["kind"] == "incident" and paging["last_paged_at"] is not None and not paging["transient"]
    [noise] = client.get("/incidents", params={"kind": "noise"}).json()["items"]
    assert noise["kind"] == "noise" and noise["services"] == ["payments"] and noise["last_paged_at"] is None
    assert client.get("/incidents", params={"kind": "all"}).json()["total"] == 2
    assert client.get(f"/incidents/{noise['id']}").json()["kind"] == "noise"
    only = client.get("/incidents", params={"service": "checkout", "status": "open"}).json()
    assert only["total"] == 1
    incident = only["items"][0]
    detail = client.get(f"/incidents/{incident['id']}").json()
    assert detail["event_count"] == 3 and [e["event"]["id"] for e in detail["events"]] == ["a1", "a2", "a3"]
    joined = detail["events"][1]["membership"]
    assert joined["rule"] == "correlated"
    assert joined["explanation"].startswith("joined because: same service checkout, 40 s after")
    assert detail["events"][2]["membership"]["action"] == "suppressed"


def test_paging(client: TestClient) -> None:
    first = client.get("/incidents", params={"kind": "all", "limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_offset"] == 1
    second = client.get("/incidents", params={"kind": "all", "limit": 1, "offset": 1}).json()
    assert second["items"][0]["id"] != first["items"][0]["id"]


def test_event_and_404s(client: TestClient) -> None:
    assert client.get("/events/l1").json()["membership"]["action"] == "opened"
    assert client.get("/events/nope").status_code == 404
    assert client.get("/incidents/nope").status_code == 404


def test_bad_query_parameters_get_422_naming_the_field(client: TestClient) -> None:
    r = client.get("/incidents", params={"since": "yesterday"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "since"]
    assert client.get("/incidents", params={"status": "sleeping"}).status_code == 422
    assert client.get("/incidents", params={"limit": 0}).status_code == 422
    r = client.get("/incidents", params={"kind": "noisy"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "kind"]


def test_noise_stats(client: TestClient) -> None:
    stats = client.get("/stats/noise").json()
    assert stats["total"] == {"events": 4, "duplicates_suppressed": 1, "incidents": 1, "noise_groups": 1,
                              "pages": 1, "compression": 0.75}
    assert set(stats["by_source"]) == {"alertmanager", "otel"}
    assert stats["by_service"]["payments"] == {"events": 1, "duplicates_suppressed": 0, "incidents": 0,
                                               "noise_groups": 1, "pages": 0, "compression": 1.0}
    narrow = client.get("/stats/noise", params={"since": "2026-03-11T14:00:45Z"}).json()
    assert narrow["total"]["events"] == 2
    assert client.get("/stats/noise", params={"since": "2026-03-12T00:00:00Z",
                                               "until": "2026-03-11T00:00:00Z"}).status_code == 422


def test_health_ready_metrics_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    assert client.get("/readyz").json()["checks"] == {"store": "ok"}
    text = client.get("/metrics").text
    assert "triage_events_stored_total 4.0" in text and "triage_batch_processing_seconds_bucket" in text
    assert "triage_incidents_opened_total 1.0" in text and "triage_noise_groups_opened_total 1.0" in text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/incidents", "/incidents/{incident_id}", "/events/{event_id}", "/stats/noise"} <= set(paths)


def test_readyz_is_503_when_a_dependency_fails(store: SqlStore) -> None:
    def broker_down() -> None:
        raise ConnectionError("no broker at 127.0.0.1:1")

    with TestClient(create_app(store, embedder=EMBEDDER, ready_checks={"store": store.ping, "broker": broker_down})) as c:
        r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["broker"].startswith("failed: ConnectionError")


@pytest.mark.parametrize("path,params,loc", [
    ("/incidents", {"offset": "99999999999999999999"}, ["query", "offset"]),
    ("/incidents/{incident}", {"offset": str(2**63)}, ["query", "offset"]),
    ("/families", {"offset": "99999999999999999999"}, ["query", "offset"]),
    ("/families/99999999999999999999999", {}, ["path", "family_id"]),
    ("/families/2147483648", {}, ["path", "family_id"]),
    ("/incidents", {"since": "9999-12-31T23:00:00-05:00"}, ["query", "since"]),   # no UTC form in the calendar
    ("/stats/noise", {"until": "0001-01-01T00:00:00+05:00"}, ["query", "until"]),
    ("/incidents", {"service": "check\x00out"}, ["query", "service"]),
    ("/events/a%00b", {}, ["path", "event_id"]),
    ("/incidents/a%00b", {}, ["path", "incident_id"]),
])
def test_out_of_range_parameters_get_422_naming_them(client: TestClient, path: str, params: dict[str, str],
                                                     loc: list[str]) -> None:
    """Values the databases cannot hold or search for (past 64 bits, past the column's
    32 bits, NUL) were a 500 from the driver; now they are refused before any query."""
    incident = client.get("/incidents").json()["items"][0]["id"]
    r = client.get(path.format(incident=incident), params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    # The largest offset the databases hold is still a query, with an empty page.
    assert client.get("/incidents", params={"offset": 2**63 - 1}).json()["items"] == []


@pytest.mark.parametrize("body,loc", [
    ({"responder": "a\x00b"}, ["body", "responder"]),
    ({"responder": "ana", "resolved_at": "9999-12-31T23:00:00-05:00"}, ["body", "resolved_at"]),
])
def test_bodies_the_store_cannot_hold_get_422(client: TestClient, body: dict[str, str], loc: list[str]) -> None:
    incident = client.get("/incidents").json()["items"][0]["id"]
    r = client.post(f"/incidents/{incident}/resolution", json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == loc, r.text
    # A lone surrogate (JSON's \ud800 escape) is refused, and the 422 quoting it is valid JSON.
    r = client.post(f"/incidents/{incident}/merge", content=b'{"incidents": ["\\ud800"], "author": "ana"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "incidents", 0]
    r = client.put("/models/parameters", json={"values": {"dedup_window": 1e300}, "reason": "r", "author": "ana"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "values", "dedup_window"]


def test_readyz_tells_reasons_only_to_a_key_that_may_read(store: SqlStore) -> None:
    """A probe without a key learns which checks fail, not why: no hosts, ports or driver
    messages. A read key gets the reasons, with credentials masked."""
    from triage.domain.health import Health
    from triage.store.api_keys import ApiKeyStore, Scope

    def broker_down() -> None:
        raise ConnectionError("no broker at kafka.internal:9092 (sasl password=hunter2)")

    health = Health()
    health.failing("sender", "OperationalError: connection to postgresql://triage:s3cret@db.internal:5432/triage "
                             "failed\n[SQL: SELECT secret FROM outbox]")
    keys = ApiKeyStore(store.engine)
    _, reader = keys.create("dashboards", {Scope.read})
    _, ingester = keys.create("alertmanager", {Scope.ingest})
    with TestClient(create_app(store, embedder=EMBEDDER, ready_checks={"store": store.ping, "broker": broker_down},
                               health=health)) as c:
        anonymous = c.get("/readyz")
        wrong = c.get("/readyz", headers={"Authorization": f"Bearer {ingester}"})
        reading = c.get("/readyz", headers={"Authorization": f"Bearer {reader}"})
    assert anonymous.status_code == wrong.status_code == reading.status_code == 503
    assert anonymous.json() == wrong.json() == {"status": "not ready", "checks": {
        "store": "ok", "broker": "failing", "sender": "failing"}}
    detail = reading.json()["checks"]
    assert detail["broker"].startswith("failed: ConnectionError: no broker at kafka.internal:9092")
    assert "db.internal:5432" in detail["sender"] and detail["sender"].startswith("failing (1 tries)")
    for secret in ("hunter2", "s3cret", "SELECT"):
        assert secret not in reading.text



def test_a_store_that_does_not_answer_is_a_503_without_the_drivers_message(
        store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads and key checks alike: 503 with Retry-After, never a 500 and never "open"."""
    import sqlalchemy as sa

    from triage.store.api_keys import ApiKeyStore, Scope

    def down(*_: object, **__: object) -> None:
        raise sa.exc.OperationalError("SELECT 1", {}, ConnectionError('connection to "db.internal", port 5432 refused'))

    with TestClient(create_app(store, embedder=EMBEDDER)) as c:   # started open: no key yet
        assert c.get("/incidents").status_code == 200
        with monkeypatch.context() as m:
            m.setattr(ApiKeyStore, "any_created", down)   # cannot tell whether a key exists: closed
            r = c.get("/incidents")
            assert r.status_code == 503 and r.headers["retry-after"] == "5" and "db.internal" not in r.text
        _, reader = ApiKeyStore(store.engine).create("dashboards", {Scope.read})
        auth = {"Authorization": f"Bearer {reader}"}
        with monkeypatch.context() as m:
            m.setattr(store, "list_incidents", down)
            r = c.get("/incidents", headers=auth)
            assert r.status_code == 503 and r.headers["retry-after"] == "5" and "db.internal" not in r.text
        with monkeypatch.context() as m:
            m.setattr(ApiKeyStore, "authenticate", down)
            r = c.get("/events/x", headers=auth)
            assert r.status_code == 503 and "db.internal" not in r.text
