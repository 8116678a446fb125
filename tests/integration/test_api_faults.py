"""The API under faults, through real HTTP: a broker stopped under a webhook, API keys
revoked or created while the service runs (also by `triage keys` in another process)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.kafka_helpers import isolated_settings, wait_for
from tests.unit.test_webhooks import ALERTMANAGER
from triage.broker import EmbeddedBroker
from triage.service import Runtime
from triage.store.api_keys import ApiKeyStore, Scope

pytestmark = pytest.mark.integration


def api_only(bootstrap: str, db: Path, *, admin_key: list[str] | None = None, **settings: object) -> Runtime:
    """A process serving the API alone; with ``admin_key``, an admin key (id, token) is
    created before it starts."""
    runtime = Runtime.build(isolated_settings(bootstrap, f"sqlite:///{db}", **settings))
    if admin_key is not None:
        key, token = ApiKeyStore(runtime.store.engine).create("ops", {Scope.admin})
        admin_key.extend([key.id, token])
    runtime.start_api()
    return runtime


def client(runtime: Runtime, timeout: float = 60) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{runtime.api_port}", timeout=timeout)


def test_a_stopped_broker_gets_webhooks_a_quick_503_and_never_freezes_the_api(tmp_path: Path) -> None:
    """The broker of this test alone is stopped with a webhook in flight: /healthz answers
    all along, the webhook gets a 503 with Retry-After within seconds, the next ones at
    once, /readyz says not ready within seconds, and webhooks are accepted again once the
    broker is back."""
    broker = EmbeddedBroker().start()
    runtime = api_only(broker.bootstrap_servers, tmp_path / "f.db")
    try:
        with client(runtime) as api, client(runtime, timeout=5) as probe:
            assert api.post("/webhooks/alertmanager", json=ALERTMANAGER).status_code == 202
            broker.stop()
            answer: dict[str, object] = {}

            def post() -> None:
                started = time.monotonic()
                r = api.post("/webhooks/alertmanager", json=ALERTMANAGER)
                answer.update(status=r.status_code, seconds=time.monotonic() - started,
                              retry_after=r.headers.get("retry-after"), detail=r.json()["detail"])

            in_flight = threading.Thread(target=post)
            in_flight.start()
            slowest = 0.0
            while in_flight.is_alive():
                started = time.monotonic()
                assert probe.get("/healthz").status_code == 200
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.1)
            in_flight.join()
            assert slowest < 1.0, f"/healthz took {slowest:.1f} s while a webhook waited for the broker"
            assert answer["status"] == 503 and float(str(answer["seconds"])) < 15, answer
            assert answer["retry_after"] and "broker" in str(answer["detail"]), answer

            # Known down: the next webhook is refused at once.
            started = time.monotonic()
            r = api.post("/webhooks/alertmanager", json=ALERTMANAGER)
            assert r.status_code == 503 and time.monotonic() - started < 3, r.text
            assert int(r.headers["retry-after"]) >= 1

            # /readyz says so within seconds (the broker client alone would wait 30 s).
            for _ in range(2):
                started = time.monotonic()
                r = api.get("/readyz")
                assert r.status_code == 503 and r.json()["checks"]["broker"].startswith("failed")
                assert time.monotonic() - started < 8

            broker = EmbeddedBroker(port=broker.port).start()
            wait_for(lambda: api.post("/webhooks/alertmanager", json=ALERTMANAGER).status_code == 202, 60,
                     "a webhook accepted once the broker is back", interval=1)
    finally:
        runtime.close()
        broker.stop()


def triage_keys(db: Path, *args: str) -> str:
    """`triage keys ...` in its own process, as an operator runs it beside `triage serve`."""
    exe = shutil.which("triage", path=str(Path(sys.executable).parent)) or "triage"
    done = subprocess.run([exe, "keys", *args, "--database-url", f"sqlite:///{db}"], capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip()


@pytest.fixture
def open_service(tmp_path: Path) -> Iterator[tuple[Runtime, Path]]:
    """A service started with no key ever created, on loopback: open. No broker needed."""
    db = tmp_path / "k.db"
    runtime = api_only("127.0.0.1:1", db)
    try:
        yield runtime, db
    finally:
        runtime.close()


def test_an_open_service_closes_for_good_when_another_process_creates_a_key(
        open_service: tuple[Runtime, Path]) -> None:
    runtime, db = open_service
    with client(runtime) as api:
        assert api.get("/incidents").status_code == 200   # open: started on loopback, no key ever
        token = triage_keys(db, "create", "--scope", "admin", "--name", "ops")
        assert api.get("/incidents").status_code == 401   # closed at the next request
        auth = {"Authorization": f"Bearer {token}"}
        assert api.get("/incidents", headers=auth).status_code == 200
        [key_id] = [line.split()[0] for line in triage_keys(db, "list").splitlines()]
        triage_keys(db, "revoke", key_id)
        # Every key revoked: still closed, and the revoked admin token is refused everywhere.
        assert api.get("/incidents").status_code == 401
        assert api.get("/incidents", headers=auth).status_code == 401
        change = {"values": {"window": 400}, "reason": "revoked keys must not tune", "author": "x"}
        assert api.put("/models/parameters", json=change, headers=auth).status_code == 401
        assert api.put("/models/parameters", json=change).status_code == 401


def test_revoking_every_key_never_opens_the_api(tmp_path: Path) -> None:
    """Keys exist at start-up, on a public address; every key is then revoked. The API
    stays closed: no call gets through without a key, a revoked token never works again,
    and a restart keeps it so."""
    db = tmp_path / "r.db"
    admin: list[str] = []
    runtime = api_only("127.0.0.1:1", db, admin_key=admin, api_host="0.0.0.0")
    key_id, token = admin
    try:
        with client(runtime) as api:
            auth = {"Authorization": f"Bearer {token}"}
            assert api.get("/incidents", headers=auth).status_code == 200
            ApiKeyStore(runtime.store.engine).revoke(key_id)
            time.sleep(5.5)   # longer than any cache of "are there keys?" could last
            assert api.get("/incidents").status_code == 401
            assert api.get("/incidents", headers=auth).status_code == 401
            assert api.post("/models/parameters/rollback/0", json={"author": "x"}, headers=auth).status_code == 401
            assert api.get("/healthz").status_code == 200
    finally:
        runtime.close()
    restarted = api_only("127.0.0.1:1", db, api_host="0.0.0.0")   # no ExposureError: keys existed
    try:
        with client(restarted) as api:
            assert api.get("/incidents").status_code == 401
    finally:
        restarted.close()
