"""Pages out: the outbox and its sender against a local HTTP server standing in for PagerDuty."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EMBEDDER, make_event
from triage.models.parameters import CorrelationParameters
from triage.services.pipeline import Pipeline
from triage.services.triage_context import TriageContextService
from triage.paging.sender import OutboxSender, PagerDutyTarget, WebhookTarget
from triage.store import IncidentQuery, SqlStore
from triage.paging.outbox import OutboxStore

AT_ONCE = CorrelationParameters(auto_pause=0)  # auto_pause 0: these pages go out at once (the pause has its own tests)

pytestmark = pytest.mark.integration
ROUTING_KEY = "R0UT1NG-SECRET-0000000000000000"


class FakePagerDuty(ThreadingHTTPServer):
    """Answers like the Events API v2: 202 for a good event, 400 for a bad one; fails the
    first ``fail_first`` requests with 503; keeps one alert per dedup_key, as PagerDuty does."""

    def __init__(self, fail_first: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail_first = fail_first
        self.requests: list[dict[str, Any]] = []
        self.alerts: dict[str, str] = {}  # dedup_key -> status
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v2/enqueue"


class _Handler(BaseHTTPRequestHandler):
    server: FakePagerDuty

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with self.server.lock:
            self.server.requests.append(body)
            if len(self.server.requests) <= self.server.fail_first:
                self._answer(503, {"status": "unavailable"})
                return
            if body.get("routing_key") != ROUTING_KEY or "dedup_key" not in body:
                self._answer(400, {"status": "invalid event", "message": "Event object is invalid"})
                return
            self.server.alerts[body["dedup_key"]] = {"trigger": "triggered", "resolve": "resolved"}[body["event_action"]]
        self._answer(202, {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]})

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    server = FakePagerDuty(fail_first=3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def sender(store: SqlStore, url: str, clock: Clock, client: httpx.Client) -> OutboxSender:
    return OutboxSender(store, [PagerDutyTarget(url, ROUTING_KEY, client)], "http://triage.test",
                        backoff=timedelta(seconds=1), clock=clock)


def drain(s: OutboxSender, clock: Clock, rounds: int = 30) -> None:
    for _ in range(rounds):
        s.run_once()
        clock.now += timedelta(seconds=61)  # past every backoff and lease


def test_pages_survive_failures_and_a_sender_restart_with_none_lost_or_doubled(
        pagerduty: FakePagerDuty, store: SqlStore) -> None:
    pipeline = Pipeline(store, EMBEDDER, page_targets=["pagerduty"], parameters=AT_ONCE)
    # Two services, 500 alerts on checkout: throttled to a few pages, not 500.
    events = [make_event(i, id=f"c{i}", fingerprint=f"c{i}") for i in range(500)]
    events += [make_event(3, id="p1", service="payments", fingerprint="p1")]
    pipeline(events)
    pipeline([make_event(600, id="p1-ok", service="payments", fingerprint="p1", status="resolved")])
    outbox = OutboxStore(store.engine)
    assert outbox.counts() == {"pending": 3}  # checkout trigger, payments trigger + resolve

    clock = Clock()
    clock.now = datetime.now(timezone.utc) + timedelta(seconds=60)  # past group_wait
    with httpx.Client(timeout=5) as client:
        first = sender(store, pagerduty.url, clock, client)
        first.run_once()                 # every attempt meets a 503
        assert outbox.counts() == {"pending": 3}
        # A forced restart: the old sender is gone mid-way, its claims not finished.
        first.outbox.claim_due(clock.now + timedelta(seconds=2))  # claimed, then "crashed"
        del first
        drain(sender(store, pagerduty.url, clock, client), clock)

    assert outbox.counts() == {"sent": 3}
    incidents = {i.id: i for i in store.list_incidents(IncidentQuery()).items}
    assert set(pagerduty.alerts) == set(incidents)  # every incident paged: none lost
    assert Counter(pagerduty.alerts.values()) == {"triggered": 1, "resolved": 1}
    triggers = [r for r in pagerduty.requests[3:] if r["event_action"] == "trigger"]
    assert len(triggers) == 2  # none doubled: one delivered trigger per incident
    checkout = next(r for r in triggers if "checkout" in r["payload"]["custom_details"]["services"])
    details = checkout["payload"]["custom_details"]
    assert details["alert_count"] == 500 and details["why_grouped"][0].startswith("joined because")
    assert checkout["links"][0]["href"].startswith("http://triage.test/incidents/")


def test_a_4xx_is_not_retried_and_its_error_is_recorded(pagerduty: FakePagerDuty, tmp_path: Path) -> None:
    pagerduty.fail_first = 0
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'p.db'}")
    Pipeline(store, EMBEDDER, page_targets=["pagerduty"], parameters=AT_ONCE)([make_event(0, id="a", fingerprint="a")])
    clock = Clock()
    clock.now += timedelta(seconds=60)
    with httpx.Client(timeout=5) as client:
        bad = OutboxSender(store, [PagerDutyTarget(pagerduty.url, "wrong-key", client)], "http://t", clock=clock)
        drain(bad, clock, rounds=3)
    [row] = OutboxStore(store.engine).items()
    assert row["status"] == "failed" and row["attempts"] == 1 and "HTTP 400" in row["last_error"]
    store.close()


def test_webhook_pages_are_signed(tmp_path: Path, pagerduty: FakePagerDuty) -> None:
    received: list[tuple[bytes, str]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append((self.rfile.read(int(self.headers["content-length"])),
                             self.headers["X-Triage-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'w.db'}")
    Pipeline(store, EMBEDDER, page_targets=["webhook"], parameters=AT_ONCE)([make_event(0, id="a", fingerprint="a")])
    clock = Clock()
    clock.now += timedelta(seconds=60)
    with httpx.Client(timeout=5) as client:
        target = WebhookTarget(f"http://127.0.0.1:{server.server_address[1]}/hook", "s3cret", client)
        OutboxSender(store, [target], "http://t", clock=clock,
                     triage=TriageContextService(store).for_incident).run_once()
    server.shutdown()
    [(body, signature)] = received
    assert signature == "v1=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    page = json.loads(body)
    assert page["action"] == "trigger"
    # the incident's triage rides along, as GET /incidents/{id} shows it
    [cause] = page["incident"]["triage"]["probable_cause"]
    assert cause["component"] == "checkout" and "first sign of the incident" in cause["evidence"]
    store.close()


def test_a_resolve_waits_reopen_window_and_a_flapping_alert_keeps_the_page_open(
        pagerduty: FakePagerDuty, tmp_path: Path) -> None:
    pagerduty.fail_first = 0
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'f.db'}")
    pipeline = Pipeline(store, EMBEDDER, page_targets=["pagerduty"], parameters=AT_ONCE)
    pipeline([make_event(0, id="a", fingerprint="a")])
    pipeline([make_event(60, id="a-ok", fingerprint="a", status="resolved")])
    outbox = OutboxStore(store.engine)
    [resolve] = [row for row in outbox.items() if row["action"] == "resolve"]
    assert resolve["next_attempt_at"] >= resolve["created_at"] + timedelta(seconds=AT_ONCE.reopen_window - 1)
    pipeline([make_event(100, id="a-again", fingerprint="a")])   # re-fires within reopen_window
    clock = Clock()
    clock.now += timedelta(seconds=AT_ONCE.reopen_window + 60)
    with httpx.Client(timeout=5) as client:
        drain(sender(store, pagerduty.url, clock, client), clock, rounds=3)
    # One trigger, no resolve: PagerDuty's alert stays open, nobody is paged a second time.
    assert [r["event_action"] for r in pagerduty.requests] == ["trigger"]
    assert list(pagerduty.alerts.values()) == ["triggered"]
    [resolve] = [row for row in outbox.items() if row["action"] == "resolve"]
    assert resolve["status"] == "skipped" and "reopen_window" in resolve["last_error"]
    store.close()
