"""The service catalog through the real API on SQLite and PostgreSQL: every change a new
version with who and why, the history readable, scopes enforced, nonsense refused naming
the field; the catalog file applied at start-up; the service graph's edges and sources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER, SHARED_DATA, T0, make_event, skip_or_fail
from triage.api import create_app
from triage.models.catalog import Catalog, ServiceEntry, TeamEntry
from triage.services.catalog import CatalogCache, CatalogFileError, load_catalog_file
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store.api_keys import ApiKeyStore, Scope
from triage.store.catalog import CatalogStore, EntryKind, Origin
from triage.store.graph import record_edges

pytestmark = pytest.mark.integration

CART = {"kind": "service", "team": "cart", "owners": ["amara.ruiz"], "depends_on": ["redis-cart"],
        "runbooks": [{"title": "Rollback a bad deploy", "url": "https://runbooks.example/cart/rollback",
                      "tags": ["deploy"]}]}


@pytest.fixture
def client(store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, embedder=EMBEDDER)) as c:
        yield c


def put(client: TestClient, path: str, body: dict[str, Any], reason: str = "test", author: str = "ana") -> Any:
    return client.put(path, json={**body, "reason": reason, "author": author})


def test_entries_are_created_changed_deleted_as_versions(client: TestClient) -> None:
    assert client.get("/services").json() == [] and client.get("/teams").json() == []
    r = put(client, "/teams/cart", {"members": ["amara.ruiz", "lea.kim"], "slack": "#cart-oncall"}, "new team")
    assert r.status_code == 201, r.text
    assert r.json()["channels"] == ["#cart-oncall"] and r.json()["version"] == 1 and "slack" not in r.json()
    r = put(client, "/services/cartservice", CART, "onboarding")
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["version"], created["revision"], created["author"], created["reason"], created["origin"]) == \
        (1, 2, "ana", "onboarding", "api")
    assert created["runbooks"][0]["url"] == "https://runbooks.example/cart/rollback"

    same = put(client, "/services/cartservice", CART, "retry")   # nothing changed: no new version
    assert same.status_code == 200 and same.json()["version"] == 1 and same.json()["reason"] == "onboarding"
    changed = put(client, "/services/cartservice", {**CART, "owners": ["amara.ruiz", "nadia.berg"]}, "new owner",
                  "lea")
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert client.get("/services/cartservice").json()["owners"] == ["amara.ruiz", "nadia.berg"]
    assert [s["name"] for s in client.get("/services").json()] == ["cartservice"]

    gone = client.delete("/services/cartservice", params={"reason": "decommissioned", "author": "lea"})
    assert gone.status_code == 200 and gone.json()["deleted"] is True and gone.json()["version"] == 3
    missing = client.get("/services/cartservice")
    assert missing.status_code == 404 and "deleted in its version 3 by lea: decommissioned" in missing.json()["detail"]
    assert client.get("/services").json() == []
    history = client.get("/services/cartservice/versions").json()
    assert [(v["version"], v["deleted"], v["author"], v["reason"]) for v in history] == [
        (3, True, "lea", "decommissioned"), (2, False, "lea", "new owner"), (1, False, "ana", "onboarding")]
    assert history[1]["entry"]["owners"] == ["amara.ruiz", "nadia.berg"] and history[0]["entry"] is None
    again = put(client, "/services/cartservice", CART, "back")
    assert again.status_code == 201 and again.json()["version"] == 4
    assert client.delete("/services/nope", params={"reason": "x", "author": "a"}).status_code == 404
    assert client.get("/services/nope/versions").status_code == 404


@pytest.mark.parametrize("body,loc", [
    ({**CART, "owners": "amara.ruiz"}, ["body", "owners"]),
    ({**CART, "depend_on": ["x"]}, ["body", "depend_on"]),
    ({**CART, "kind": "cache"}, ["body", "kind"]),
    ({**CART, "runbooks": [{"title": "x", "url": "wiki/page"}]}, ["body", "runbooks", 0, "url"]),
    ({**CART, "runbooks": [{"url": "https://x.example/r"}]}, ["body", "runbooks", 0, "title"]),
    ({**CART, "team": "carts"}, ["body", "team"]),          # no such team
    ({**CART, "owners": ["a\u0000b"]}, ["body", "owners", 0]),
])
def test_a_malformed_body_gets_422_naming_the_field_and_changes_nothing(client: TestClient, body: dict[str, Any],
                                                                       loc: list[Any]) -> None:
    assert put(client, "/teams/cart", {"members": []}).status_code == 201
    r = put(client, "/services/cartservice", body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    assert client.get("/services/cartservice").status_code == 404


def test_who_why_and_the_name_are_checked(client: TestClient) -> None:
    r = client.put("/teams/cart", json={"members": [], "author": "ana"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reason"]
    r = client.put("/teams/cart", json={"members": [], "reason": "x"})   # open mode: no key to name
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "author"]
    r = put(client, "/services/graph", {})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "name"]
    assert client.get("/services/" + "x" * 201).status_code == 422
    assert client.delete("/teams/cart", params={"author": "a"}).status_code == 422   # no reason


def test_a_team_that_owns_services_cannot_be_deleted(client: TestClient) -> None:
    assert put(client, "/teams/cart", {}).status_code == 201
    assert put(client, "/services/cartservice", CART).status_code == 201
    r = client.delete("/teams/cart", params={"reason": "reorg", "author": "ana"})
    assert r.status_code == 409 and "cartservice" in r.json()["detail"]
    assert put(client, "/services/cartservice", {**CART, "team": None}).status_code == 200
    assert client.delete("/teams/cart", params={"reason": "reorg", "author": "ana"}).status_code == 200


def test_reading_needs_read_and_changing_needs_admin(store: SqlStore) -> None:
    keys = ApiKeyStore(store.engine)
    _, reader = keys.create("grafana", {Scope.read})
    _, ingest = keys.create("alertmanager", {Scope.ingest})
    _, admin = keys.create("sre-team", {Scope.admin})
    with TestClient(create_app(store, embedder=EMBEDDER)) as c:
        def h(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}
        body = {"members": ["ana"], "reason": "new team"}
        assert c.get("/teams").status_code == 401
        assert c.get("/teams", headers=h(ingest)).status_code == 403
        assert c.put("/teams/cart", json=body, headers=h(reader)).status_code == 403
        r = c.put("/teams/cart", json=body, headers=h(admin))
        assert r.status_code == 201 and r.json()["author"] == "sre-team"
        assert c.get("/teams/cart", headers=h(reader)).json()["members"] == ["ana"]
        assert c.get("/teams/cart/versions", headers=h(reader)).status_code == 200
        assert c.get("/services/graph", headers=h(reader)).status_code == 200
        assert c.delete("/teams/cart", params={"reason": "x"}, headers=h(reader)).status_code == 403
        assert c.delete("/teams/cart", params={"reason": "x"}, headers=h(admin)).json()["author"] == "sre-team"


def test_two_writers_at_once_get_versions_one_after_the_other(store: SqlStore) -> None:
    catalog = CatalogStore(store.engine)
    catalog.put(TeamEntry("cart"), author="a", reason="r")
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for j in range(5):
                catalog.put(ServiceEntry(f"svc-{i}", team="cart", owners=(f"o{j}",)), author=f"w{i}", reason="r")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert catalog.revision() == 21
    assert all(len(catalog.history(EntryKind.service, f"svc-{i}")) == 5 for i in range(4))


def test_the_catalog_file_is_applied_at_start_up_and_api_edits_survive_a_restart(store: SqlStore,
                                                                                   tmp_path: Path) -> None:
    source = SHARED_DATA / "alerts" / "boutique-week" / "services.yaml"
    if not source.exists():
        skip_or_fail(f"{source} is not here (shared/data beside the checkout)")
    path = tmp_path / "services.yaml"
    path.write_text(source.read_text())
    written = load_catalog_file(store.engine, path)
    assert len(written) == 16 and {v.origin for v in written} == {Origin.file}
    catalog = CatalogStore(store.engine)
    assert catalog.catalog() == Catalog.from_yaml(source.read_text())
    assert load_catalog_file(store.engine, path) == []          # a restart with the same file: nothing

    with TestClient(create_app(store, embedder=EMBEDDER)) as c:
        assert c.get("/services/redis-cart").json()["kind"] == "datastore"
        assert c.get("/services/redis-cart").json()["author"] == "catalog file"
        r = put(c, "/services/adservice", {**c.get("/services/adservice").json(), "owners": ["someone.else"]},
                "handover")
        # the response's own fields are not part of an entry: a PUT of a GET's body is refused
        assert r.status_code == 422
        entry = {k: v for k, v in c.get("/services/adservice").json().items()
                 if k in ("kind", "team", "owners", "depends_on", "runbooks")}
        assert put(c, "/services/adservice", {**entry, "owners": ["someone.else"]}, "handover").status_code == 200
    assert load_catalog_file(store.engine, path) == []          # the file did not change: the API edit stays
    assert catalog.catalog().services["adservice"].owners == ("someone.else",)

    path.write_text(source.read_text().replace("owners: [tomas.ivanova, raj.li]", "owners: [new.owner]", 1))
    [changed] = load_catalog_file(store.engine, path)            # the file changed that entry: it wins
    assert (changed.name, changed.origin, changed.author) == ("adservice", Origin.file, "catalog file")
    assert catalog.catalog().services["adservice"].owners == ("new.owner",)


def test_a_malformed_catalog_file_is_refused_with_line_and_field_and_writes_nothing(store: SqlStore,
                                                                                     tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text("services:\n  - service: a\n    team: ghosts\n")
    with pytest.raises(CatalogFileError, match=r"services.yaml: line 3, services\[0\].team: team 'ghosts'"):
        load_catalog_file(store.engine, path)
    assert CatalogStore(store.engine).revision() == 0


def test_the_cache_rereads_only_when_the_catalog_moved(store: SqlStore) -> None:
    now = [0.0]
    cache = CatalogCache(store.engine, interval_s=10, clock=lambda: now[0])
    assert cache.current() == Catalog()
    CatalogStore(store.engine).put(TeamEntry("cart"), author="a", reason="r")
    assert cache.current() == Catalog()        # asked within the interval: the copy it has
    now[0] = 11.0
    assert set(cache.current().teams) == {"cart"}


def test_the_graph_says_where_each_edge_came_from(client: TestClient, store: SqlStore) -> None:
    put(client, "/teams/cart", {})
    put(client, "/services/cartservice", {**CART, "aliases": ["cart"]})
    put(client, "/services/redis-cart", {"kind": "datastore", "team": "cart"})
    with store.engine.begin() as conn:
        record_edges(conn, [("frontend", "cart", T0), ("frontend", "cart", T0 + timedelta(seconds=30)),
                            ("cart", "redis-cart", T0)])
    # placement, as the consumer learns it: events of a service on a host
    # and a log record naming another service of the graph
    Pipeline(store, EMBEDDER)([make_event(0, id="p1", service="redis-cart", host="node-1"),
                     make_event(40, id="p2", service="cartservice", host="node-2"),
                     make_event(50, id="p3", kind="log", source="otel", service="checkoutservice", host="node-2",
                                title="rpc error: code = Unavailable (calling cartservice)", labels={})])
    graph = client.get("/services/graph").json()
    edges = {(e["from"], e["to"]): e for e in graph["edges"]}
    declared_and_traced = edges[("cartservice", "redis-cart")]
    assert [s["source"] for s in declared_and_traced["sources"]] == ["declared", "traces"]
    assert declared_and_traced["relation"] == "depends_on"
    traced = edges[("frontend", "cartservice")]                  # "cart" is the entry's alias
    assert [s["source"] for s in traced["sources"]] == ["traces"] and traced["sources"][0]["count"] == 2
    assert traced["last_seen"] == "2026-03-11T14:00:30Z"
    placed = edges[("cartservice", "host:node-2")]
    assert placed["relation"] == "runs_on" and placed["sources"][0]["source"] == "placement"
    assert placed["last_seen"] == "2026-03-11T14:00:40Z"
    named = edges[("checkoutservice", "cartservice")]
    assert [s["source"] for s in named["sources"]] == ["logs"] and named["last_seen"] == "2026-03-11T14:00:50Z"
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["redis-cart"] == {"id": "redis-cart", "kind": "datastore", "team": "cart", "in_catalog": True}
    assert nodes["frontend"]["kind"] == "unknown" and nodes["host:node-1"]["kind"] == "host"


def test_the_tables_exist_after_the_migrations(store: SqlStore) -> None:
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"catalog_versions", "changes", "service_versions"} <= names


def test_a_process_refuses_to_start_on_a_malformed_catalog_file(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text("services:\n  - service: cartservice\n    owners: amara.ruiz\n")
    exe = shutil.which("triage", path=str(Path(sys.executable).parent)) or "triage"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRIAGE_CATALOG_FILE": str(path),
           "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}", "TRIAGE_API_PORT": "0"}
    result = subprocess.run([exe, "api"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1, result.stderr
    assert f"TRIAGE_CATALOG_FILE {path}: line 3, services[0].owners: Input should be a valid list" in result.stderr
    bad_rule = subprocess.run([exe, "api"], capture_output=True, text=True, timeout=120,
                              env={**env, "TRIAGE_CATALOG_FILE": "", "TRIAGE_CATALOG_MAPPING": "service,hostname"})
    assert bad_rule.returncode == 2 and "unknown mapping rule 'hostname'" in bad_rule.stderr


def test_a_process_started_with_a_catalog_file_serves_it(tmp_path: Path) -> None:
    from triage.service import Runtime
    from triage.settings import Settings

    path = tmp_path / "services.yaml"
    path.write_text("services:\n  - service: cartservice\n    team: cart\nteams:\n  - team: cart\n    members: [ana]\n")
    runtime = Runtime.build(Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", catalog_file=path))
    try:
        runtime.check_api_exposure()   # no key ever created, loopback: open
        with TestClient(runtime.make_app()) as c:
            assert c.get("/services/cartservice").json()["team"] == "cart"
            assert c.get("/teams/cart").json()["members"] == ["ana"]
    finally:
        runtime.close()
