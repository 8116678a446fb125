"""SREs tune the correlation parameters through the API; decisions record the version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER, make_event
from triage.api import create_app
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store.api_keys import ApiKeyStore, Scope


@pytest.fixture
def client(store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, embedder=EMBEDDER)) as c:
        yield c


def test_change_is_a_new_version_used_by_the_next_decisions(client: TestClient, store: SqlStore) -> None:
    assert client.get("/models/parameters").json()["version"] == 0
    r = client.put("/models/parameters", json={"values": {"window": 600}, "reason": "storms last longer",
                                               "author": "ana"})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["values"]["window"] == 600 and r.json()["author"] == "ana"
    assert client.get("/models/parameters").json()["values"]["window"] == 600

    pipeline = Pipeline(store, EMBEDDER)  # one long-lived consumer: it must see the change without a restart
    pipeline([make_event(0, id="a", fingerprint="a"), make_event(500, id="b", fingerprint="b")])
    b = client.get("/events/b").json()["membership"]
    assert b["parameters_version"] == 1 and b["action"] == "attached"  # 500 s gap, window 600

    back = client.post("/models/parameters/rollback/0", json={"author": "ana"})
    assert back.status_code == 201 and back.json()["version"] == 2
    assert back.json()["reason"] == "rollback to version 0" and back.json()["values"]["window"] == 300
    pipeline([make_event(1200, id="c", fingerprint="c")])
    assert client.get("/events/c").json()["membership"]["parameters_version"] == 2
    assert [v["version"] for v in client.get("/models/parameters/versions").json()] == [2, 1, 0]


@pytest.mark.parametrize("values,field", [
    ({"window": -5}, "window"), ({"group_interval": -1}, "group_interval"), ({"bogus": 1}, "bogus"),
    ({"window": "soon"}, "window"),
])
def test_nonsense_gets_422_naming_the_field_and_changes_nothing(client: TestClient, values: dict[str, object],
                                                               field: str) -> None:
    r = client.put("/models/parameters", json={"values": values, "reason": "x", "author": "ana"})
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "values", field]]
    assert client.get("/models/parameters").json()["version"] == 0


def test_who_and_why_are_required(client: TestClient) -> None:
    assert client.put("/models/parameters", json={"values": {}, "author": "ana"}).status_code == 422
    r = client.put("/models/parameters", json={"values": {}, "reason": "no author"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "author"]
    assert client.post("/models/parameters/rollback/99", json={"author": "ana"}).status_code == 404


def test_changing_needs_the_admin_scope(store: SqlStore) -> None:
    keys = ApiKeyStore(store.engine)
    _, reader = keys.create("grafana", {Scope.read})
    _, admin = keys.create("sre-team", {Scope.admin})
    with TestClient(create_app(store, embedder=EMBEDDER)) as c:
        body = {"values": {"window": 400}, "reason": "test"}
        assert c.get("/models/parameters", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
        assert c.put("/models/parameters", json=body, headers={"Authorization": f"Bearer {reader}"}).status_code == 403
        r = c.put("/models/parameters", json=body, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 201 and r.json()["author"] == "sre-team"
