"""GET /stats/quality: triage's grouping scored against responders' merges and splits
(SQLite and PostgreSQL), with expected values worked out by hand in each test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER, T0, make_event
from triage.api import create_app
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store.feedback import feedback

pytestmark = pytest.mark.integration
WEEK = timedelta(days=7)


@pytest.fixture
def client(store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, embedder=EMBEDDER)) as c:
        yield c


def alerts(prefix: str, service: str, fingerprint: str, count: int, start: timedelta) -> list[Any]:
    """``count`` firings of one alert, 10 s apart: one incident (the repeats are duplicates)."""
    return [make_event((start + timedelta(seconds=10 * i)).total_seconds(), id=f"{prefix}{i + 1}",
                       service=service, fingerprint=fingerprint, title=f"{service} is down",
                       labels={"alertname": f"{service}Down"}) for i in range(count)]


def incident_of(store: SqlStore, event_id: str) -> str:
    stored = store.get_event(event_id)
    assert stored is not None and stored.membership is not None
    return stored.membership.incident_id


def merge(client: TestClient, into: str, *others: str) -> None:
    r = client.post(f"/incidents/{into}/merge", json={"incidents": list(others), "author": "dana", "reason": "one"})
    assert r.status_code == 200, r.text


def split(client: TestClient, incident: str, *events: str) -> str:
    r = client.post(f"/incidents/{incident}/split", json={"events": list(events), "author": "lee", "reason": "two"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def scores(body: dict[str, Any]) -> tuple[Any, ...]:
    return (body["events"], body["incidents"], body["triage_groups"], tuple(body["pairs"].values()),
            round(body["precision"], 4), round(body["recall"], 4),
            round(body["bcubed_precision"], 4), round(body["bcubed_recall"], 4))


def test_merges_and_splits_score_triage_per_week_and_version(store: SqlStore, client: TestClient) -> None:
    """Week 1, parameters v0: A = a1..a3 and B = b1..b2, merged (they are one problem).
    Week 2, parameters v1: C = c1..c4, of which c3, c4 are split off (another problem).

    Responders' grouping {a1 a2 a3 b1 b2} {c1 c2} {c3 c4}, triage's {a1 a2 a3} {b1 b2} {c1..c4}.
    Pairs: responders 10 + 1 + 1 = 12, triage 3 + 1 + 6 = 10, in both 3 + 1 + 1 + 1 = 6:
    precision 6/10, recall 6/12. B-cubed precision: a's 3/3, b's 2/2, c's 2/4 -> 7/9;
    recall: a's 3/5, b's 2/5, c's 2/2 -> (1.8 + 0.8 + 4)/9 = 6.6/9."""
    pipeline = Pipeline(store, EMBEDDER)
    pipeline(alerts("a", "cartservice", "fa", 3, timedelta(0)) + alerts("b", "frontend", "fb", 2, timedelta(0)))
    r = client.put("/models/parameters", json={"values": {"threshold": 0.6}, "reason": "try", "author": "sre"})
    assert r.status_code == 201 and r.json()["version"] == 1
    pipeline(alerts("c", "paymentservice", "fc", 4, WEEK))
    a, b, c = (incident_of(store, e) for e in ("a1", "b1", "c1"))
    assert len({a, b, c}) == 3

    empty = client.get("/stats/quality").json()
    assert empty["total"] is None and empty["weeks"] == [] and empty["merges"] == 0   # nothing corrected yet

    merge(client, a, b)
    split(client, c, "c3", "c4")
    body = client.get("/stats/quality").json()
    assert (body["merges"], body["splits"], body["incomplete"]) == (1, 1, 0)
    assert scores(body["total"]) == (9, 3, 3, (6, 12, 10), 0.6, 0.5, round(7 / 9, 4), round(6.6 / 9, 4))
    first, second = body["weeks"]
    assert (first["week"], second["week"]) == ("2026-03-09", "2026-03-16")   # T0 is a Wednesday
    # Week 1, all v0: responders {a1..b2} (10 pairs), triage {a..}{b..} (3 + 1): P 4/4, R 4/10.
    assert [v["parameters_version"] for v in first["versions"]] == [0]
    assert scores(first["total"]) == (5, 1, 2, (4, 10, 4), 1.0, 0.4, 1.0, round((1.8 + 0.8) / 5, 4))
    # Week 2, all v1: responders {c1 c2}{c3 c4} (2 pairs), triage {c1..c4} (6): P 2/6, R 2/2.
    assert [v["parameters_version"] for v in second["versions"]] == [1]
    assert scores(second["versions"][0]) == (4, 2, 1, (2, 2, 6), round(1 / 3, 4), 1.0, 0.5, 1.0)

    window = client.get("/stats/quality", params={"since": (T0 + timedelta(days=3)).isoformat()}).json()
    assert [w["week"] for w in window["weeks"]] == ["2026-03-16"] and window["total"]["events"] == 4
    assert (window["merges"], window["splits"]) == (0, 1)
    assert client.get("/stats/quality", params={"since": T0.isoformat(), "until": T0.isoformat()}).status_code == 422


def test_a_split_after_a_merge_is_undone_in_order(store: SqlStore, client: TestClient) -> None:
    """B merged into A, then b2 split off again: triage's grouping is {a1 a2 a3} {b1 b2}
    (the split undone first puts b2 back in A, the merge then back in B); the responders'
    is {a1 a2 a3 b1} {b2}. Pairs: responders 6, triage 3 + 1, in both 3: P 3/4, R 3/6."""
    Pipeline(store, EMBEDDER)(alerts("a", "cartservice", "fa", 3, timedelta(0)) + alerts("b", "frontend", "fb", 2, timedelta(0)))
    a, b = incident_of(store, "a1"), incident_of(store, "b1")
    merge(client, a, b)
    split(client, a, "b2")
    total = client.get("/stats/quality").json()["total"]
    assert scores(total) == (5, 2, 2, (3, 6, 4), 0.75, 0.5, round((3 + 0.5 + 0.5) / 5, 4), round((3 * 0.75 + 0.25 + 1) / 5, 4))


def test_a_merge_recorded_without_its_events_is_left_out(store: SqlStore, client: TestClient) -> None:
    Pipeline(store, EMBEDDER)(alerts("a", "cartservice", "fa", 3, timedelta(0)) + alerts("b", "frontend", "fb", 2, timedelta(0))
                    + alerts("c", "paymentservice", "fc", 4, timedelta(0)))
    a, b, c = (incident_of(store, e) for e in ("a1", "b1", "c1"))
    split(client, c, "c4")
    now = datetime.now(timezone.utc)
    with store.engine.begin() as conn:   # as merges were recorded before they named their events
        conn.execute(sa.insert(feedback).values(
            id=f"triage.merge:{a}:old", source="api", event_type="triage.merge", incident_id=a, occurred_at=now,
            received_at=now, actor="dana", document={"into": a, "merged": [b], "reason": "one"}))
    body = client.get("/stats/quality").json()
    assert body["incomplete"] == 1 and (body["merges"], body["splits"]) == (0, 1)
    assert body["total"]["events"] == 4   # C alone: A's and B's original incidents cannot be told
