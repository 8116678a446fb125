"""The reads the web view needs, on SQLite and PostgreSQL: an incident's pages and the
noise figures per hour or day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER, T0, make_event
from triage.api import create_app
from triage.models.parameters import CorrelationParameters
from triage.services.pipeline import Pipeline
from triage.paging.sender import OutboxSender
from triage.store import SqlStore
from triage.paging.outbox import OutboxItem
from triage.store.views import Bucket, TooManyBuckets, noise_series

HOUR = 3600
AT_ONCE = CorrelationParameters(auto_pause=0)  # auto_pause 0: first pages due at once (the pause has its own test below)


class Accepting:
    name = "webhook"

    def send(self, item: OutboxItem, document: dict[str, Any]) -> None:
        pass


def storm(store: SqlStore, **pipeline: Any) -> None:
    """14:00-16:xx on T0's day: an incident at 14:00 with a duplicate, a noise group at
    14:30, nothing from 15:00, another incident at 16:10; each incident's page due at once."""
    Pipeline(store, EMBEDDER, **({"parameters": AT_ONCE} | pipeline))([
        make_event(0, id="a1", fingerprint="fa"), make_event(60, id="a2", fingerprint="fa"),
        make_event(120, id="a3", fingerprint="fb", title="Latency"),
        make_event(1800, id="l1", kind="log", source="otel", service="search", severity="error", title="stray"),
        make_event(2 * HOUR + 600, id="p1", service="payments", fingerprint="fp", title="PaymentsDown"),
    ])


@pytest.fixture
def client(store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, embedder=EMBEDDER)) as c:
        yield c


def test_noise_per_hour_adds_up_to_the_totals_with_empty_hours_as_zeros(store: SqlStore, client: TestClient) -> None:
    storm(store)
    body = client.get("/stats/noise/series", params={"bucket": "hour"}).json()
    assert body["bucket"] == "hour"
    assert [p["start"] for p in body["points"]] == ["2026-03-11T14:00:00Z", "2026-03-11T15:00:00Z",
                                                    "2026-03-11T16:00:00Z"]
    first, empty, last = body["points"]
    assert (first["events"], first["duplicates_suppressed"], first["incidents"], first["noise_groups"],
            first["pages"]) == (4, 1, 1, 1, 1)
    assert (empty["events"], empty["incidents"], empty["pages"]) == (0, 0, 0)
    assert (last["events"], last["incidents"], last["pages"]) == (1, 1, 1)
    assert (body["since"], body["until"]) == ("2026-03-11T14:00:00Z", "2026-03-11T17:00:00Z")
    totals = client.get("/stats/noise").json()["total"]
    for field in ("events", "duplicates_suppressed", "incidents", "noise_groups", "pages"):
        assert sum(p[field] for p in body["points"]) == totals[field], field

    [day] = client.get("/stats/noise/series", params={"bucket": "day"}).json()["points"]
    assert day["start"] == "2026-03-11T00:00:00Z" and day["events"] == 5 and day["compression"] == 0.6

    window = client.get("/stats/noise/series", params={"since": "2026-03-11T14:20:00+00:00",
                                                       "until": "2026-03-11T16:00:00+00:00"}).json()
    assert [p["events"] for p in window["points"]] == [1, 0]   # from 14:00's bucket, only events from 14:20
    assert window["until"] == "2026-03-11T16:00:00Z"


def test_noise_series_bounds(store: SqlStore, client: TestClient) -> None:
    assert client.get("/stats/noise/series").json() == {"bucket": "hour", "since": None, "until": None, "points": []}
    storm(store)
    r = client.get("/stats/noise/series", params={"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"})
    assert r.status_code == 422 and "at most 2000" in r.json()["detail"]
    assert client.get("/stats/noise/series", params={"since": "2024-01-01T00:00:00Z",
                                                     "until": "2026-01-01T00:00:00Z", "bucket": "day"}).status_code == 200
    r = client.get("/stats/noise/series", params={"since": "2026-03-12T00:00:00Z", "until": "2026-03-11T00:00:00Z"})
    assert r.status_code == 422
    assert client.get("/stats/noise/series", params={"bucket": "week"}).status_code == 422
    with pytest.raises(TooManyBuckets):
        noise_series(store.engine, Bucket.hour, T0, T0 + timedelta(hours=5), max_buckets=4)


def test_an_incidents_pages_say_what_was_due_sent_and_to_whom(store: SqlStore, client: TestClient) -> None:
    storm(store, page_targets=["webhook"], parameters=AT_ONCE.model_copy(update={"group_wait": 0}))
    checkout = client.get("/incidents", params={"service": "checkout"}).json()["items"][0]["id"]
    pages = client.get(f"/incidents/{checkout}/pages").json()
    assert pages["state"] == "paged" and pages["page_due_at"] is None and pages["last_paged_at"]
    [due] = pages["due"]
    assert (due["event_id"], due["first"], due["title"]) == ("a1", True, "HighErrorRate")
    [owed] = pages["deliveries"]
    assert (owed["target"], owed["action"], owed["status"], owed["cause"]) == ("webhook", "trigger", "pending", "a1")
    assert owed["next_attempt_at"] and owed["sent_at"] is None

    OutboxSender(store, [Accepting()], "http://triage").run_once()
    [sent] = client.get(f"/incidents/{checkout}/pages").json()["deliveries"]
    assert sent["status"] == "sent" and sent["sent_at"] and sent["attempts"] == 1 and sent["next_attempt_at"] is None

    noise = client.get("/incidents", params={"kind": "noise"}).json()["items"][0]["id"]
    assert client.get(f"/incidents/{noise}/pages").json() | {"incident_id": None} == {
        "incident_id": None, "state": "noise", "page_due_at": None, "last_paged_at": None, "due": [],
        "deliveries": []}
    assert client.get("/incidents/nope/pages").status_code == 404


def test_held_and_transient_first_pages(store: SqlStore, client: TestClient) -> None:
    Pipeline(store, EMBEDDER, parameters=CorrelationParameters(auto_pause=300))([
        make_event(0, id="a1", fingerprint="fa"), make_event(10, id="p1", service="payments", fingerprint="fp"),
        make_event(60, id="p1r", service="payments", fingerprint="fp", status="resolved")])
    by_service = {i["services"][0]: i["id"] for i in client.get("/incidents").json()["items"]}
    held = client.get(f"/incidents/{by_service['checkout']}/pages").json()
    assert held["state"] == "held" and held["due"] == []
    assert datetime.fromisoformat(held["page_due_at"]) == T0 + timedelta(seconds=300)
    transient = client.get(f"/incidents/{by_service['payments']}/pages").json()
    assert transient["state"] == "transient" and transient["page_due_at"] is None
