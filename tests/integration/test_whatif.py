"""What-if before apply, against the real store (SQLite and PostgreSQL) holding the
bundled storm: POST /models/parameters/preview and `triage whatif` replay the stored
window with candidate values beside the values in force, and change nothing in force."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from triage.api import create_app
from triage.ingest.decode import event_from_dict
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store import schema as t
from triage.store.api_keys import ApiKeyStore, Scope
from triage.store.feedback import feedback
from triage.store.parameters import parameter_versions
from tests.conftest import EMBEDDER

pytestmark = pytest.mark.integration
SINCE = datetime(2026, 3, 11, 8, tzinfo=timezone.utc)     # the storm: 08:00-10:00 of its day
UNTIL = datetime(2026, 3, 11, 10, tzinfo=timezone.utc)
WINDOW = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
EXE = shutil.which("triage", path=str(Path(sys.executable).parent)) or "triage"


@pytest.fixture
def storm(store: SqlStore) -> SqlStore:
    """The demo's bundled storm, straight into the store without Kafka, as the consumer stores it."""
    lines = gzip.decompress((files("triage") / "data" / "sample_storm.jsonl.gz").read_bytes()).splitlines()
    events = sorted((event_from_dict(json.loads(line)) for line in lines), key=lambda e: (e.occurred_at, e.id))
    pipeline = Pipeline(store, EMBEDDER, page_targets=["webhook"])
    for i in range(0, len(events), 500):
        pipeline(events[i:i + 500])
    return store


@pytest.fixture
def client(storm: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(storm, embedder=EMBEDDER, page_targets=["webhook"])) as c:
        yield c


def in_force(store: SqlStore) -> dict[str, Any]:
    """Everything a preview must leave as it was: parameters, decisions, incidents, dedup
    state, learned models, pages owed, feedback."""
    tables = (parameter_versions, t.memberships, t.incidents, t.signals, t.correlation_models, t.outbox,
              t.scopes, t.events, feedback)
    with store.engine.connect() as conn:
        return {table.name: sorted(tuple(str(v) for v in row) for row in conn.execute(sa.select(table)))
                for table in tables}


def preview(client: TestClient, **values: Any) -> dict[str, Any]:
    r = client.post("/models/parameters/preview", json={"values": values, **WINDOW})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_raising_the_threshold_splits_lowering_merges_and_nothing_in_force_changes(
        storm: SqlStore, client: TestClient) -> None:
    before = in_force(storm)
    noise = client.get("/stats/noise", params=WINDOW).json()["total"]

    raised = preview(client, threshold=0.9)
    assert raised["events"] == 3170 and raised["parameters_version"] == 0
    assert raised["changes"] == {"threshold": {"current": 0.55, "candidate": 0.9}}
    current, candidate = raised["current"], raised["candidate"]
    # The replay with the values in force is what the store holds (the window starts
    # before the storm and the values never changed): the same groups and pages due.
    assert (current["incidents"], current["noise_groups"], current["pages_due"]) == \
        (noise["incidents"], noise["noise_groups"], noise["pages"])
    # Raising the threshold splits. (It may merge a few: an event an older incident's
    # precedent took at 0.55 can join a young neighbour at its onset instead, at the raised
    # threshold less onset_margin.)
    assert raised["splits_total"] > 0 and raised["merges_total"] < raised["splits_total"]
    assert candidate["incidents"] > current["incidents"] and candidate["pages"] > current["pages"]
    assert candidate["compression"] < current["compression"]
    stored_ids = {i["id"] for i in client.get("/incidents", params={"kind": "all", "limit": 500}).json()["items"]}
    for split in raised["splits"]:
        assert len(split["candidate"]) > 1 and split["stored"] == split["current"]
        assert set(split["current"]) <= stored_ids

    lowered = preview(client, threshold=0.3)
    # ... and lowering it merges (the odd event may then land in another group than
    # before: a split as well)
    assert lowered["merges_total"] > lowered["splits_total"]
    assert lowered["candidate"]["incidents"] + lowered["candidate"]["noise_groups"] < \
        current["incidents"] + current["noise_groups"]
    for merge in lowered["merges"]:
        assert len(merge["current"]) > 1 and len(merge["candidate"]) == 1
    assert lowered["current"] == current   # the same replay, the same answer

    same = preview(client, threshold=0.55)
    assert same["changes"] == {} and same["merges_total"] == same["splits_total"] == 0
    assert same["candidate"] == same["current"]

    assert in_force(storm) == before
    assert client.get("/models/parameters").json()["version"] == 0


def test_auto_pause_holds_back_the_transient_pages(client: TestClient) -> None:
    # In force: auto_pause 480 s (the default); the candidate turns it off.
    body = preview(client, auto_pause=0)
    current, candidate = body["current"], body["candidate"]
    assert body["changes"] == {"auto_pause": {"current": 480.0, "candidate": 0.0}}
    assert candidate["transient_incidents"] == 0 and candidate["noise_pages"] > 0
    assert current["transient_incidents"] > 0
    assert current["noise_pages"] < candidate["noise_pages"] and current["pages"] < candidate["pages"]
    assert body["merges_total"] == body["splits_total"] == 0   # grouping is not what auto_pause changes


def test_feedback_scores_each_replay_against_the_responders(storm: SqlStore, client: TestClient) -> None:
    incidents = client.get("/incidents", params={"limit": 10}).json()["items"]
    a, b = incidents[0]["id"], incidents[1]["id"]
    r = client.post(f"/incidents/{a}/merge", json={"incidents": [b], "author": "dana", "reason": "one outage"})
    assert r.status_code == 200, r.text
    body = preview(client, threshold=0.9)
    quality = client.get("/stats/quality", params=WINDOW).json()["total"]
    assert body["feedback_events"] == quality["events"] > 0
    # The replay with the values in force groups as triage did before the merge: scored
    # against the responders it is what /stats/quality says of triage's own grouping.
    assert body["current"]["feedback"] == quality
    assert body["current"]["feedback"]["recall"] < 1.0
    candidate = body["candidate"]["feedback"]
    assert candidate["events"] == quality["events"] and candidate["triage_groups"] >= quality["triage_groups"]


def test_bad_requests_are_refused_naming_the_problem(storm: SqlStore, client: TestClient) -> None:
    r = client.post("/models/parameters/preview", json={"values": {"threshold": 2}, **WINDOW})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "values", "threshold"]
    r = client.post("/models/parameters/preview", json={"values": {"no_such": 1}, **WINDOW})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "values", "no_such"]
    r = client.post("/models/parameters/preview", json={"values": {}, "since": WINDOW["until"], "until": WINDOW["since"]})
    assert r.status_code == 422 and "before" in r.text
    r = client.post("/models/parameters/preview", json={"values": {}, "since": "2026-01-01T00:00:00Z",
                                                        "until": "2026-03-01T00:00:00Z"})
    assert r.status_code == 422 and "31 days" in r.text
    from triage.services.whatif import PREVIEW_LOCK

    with PREVIEW_LOCK:   # another preview is running in this process
        r = client.post("/models/parameters/preview", json={"values": {}, **WINDOW})
    assert r.status_code == 429 and r.headers["Retry-After"] == "10"
    _, read = ApiKeyStore(storm.engine).create("reader", {Scope.read})
    r = client.post("/models/parameters/preview", json={"values": {}, **WINDOW},
                    headers={"Authorization": f"Bearer {read}"})
    assert r.status_code == 403 and "admin" in r.text


def test_the_command_line_answers_the_same(storm: SqlStore, store_url: str) -> None:
    before = in_force(storm)
    url = store_url.replace("postgresql+psycopg://", "postgresql://")
    result = subprocess.run(
        [EXE, "whatif", "--set", "threshold=0.9", "--since", "2026-03-11T08:00:00Z", "--until", "2026-03-11T10:00",
         "--database-url", url, "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    body = json.loads(result.stdout.strip().splitlines()[-1])
    assert body["events"] == 3170 and body["changes"] == {"threshold": {"current": 0.55, "candidate": 0.9}}
    assert body["splits_total"] > 0 and body["candidate"]["incidents"] > body["current"]["incidents"]
    table = result.stderr
    assert "replay: 100%" in table                     # the progress bar
    assert "in force (v0)" in table and "candidate" in table
    pages = next(line for line in table.splitlines() if line.startswith("pages "))
    assert pages.split()[1:3] == [str(body["current"]["pages"]), str(body["candidate"]["pages"])]
    assert f"{body['splits_total']} group(s) would split" in table
    assert in_force(storm) == before

    bad = subprocess.run([EXE, "whatif", "--set", "threshold=high", "--database-url", url],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert bad.returncode == 2 and "threshold" in bad.stderr


def test_template_vectors_come_from_the_store_and_missing_ones_are_embedded_in_batches(storm: SqlStore) -> None:
    """A model whose vectors the store lacks: the replay embeds each new template once,
    per batch of events (never per event), stores them, and the next replay reuses them."""
    from triage.models.embedder import HashingEmbedder
    from triage.models.parameters import CorrelationParameters
    from triage.services.whatif import what_if

    def vectors(model: str) -> int:
        with storm.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(t.template_embeddings)
                                   .where(t.template_embeddings.c.model == model)) or 0)

    first = HashingEmbedder()
    assert vectors(first.name) == 0 and vectors("all-MiniLM-L6-v2") > 0
    parameters = CorrelationParameters()
    result = what_if(storm.engine, parameters.model_copy(update={"threshold": 0.7}), parameters, SINCE, UNTIL,
                     embedder=first, batch=500)
    assert result.embedded == first.encoded == vectors(first.name) > 0
    assert first.calls <= -(-3170 // 500)   # at most one model call per batch of events
    again = HashingEmbedder()
    repeat = what_if(storm.engine, parameters.model_copy(update={"threshold": 0.7}), parameters, SINCE, UNTIL,
                     embedder=again, batch=500)
    assert repeat.embedded == again.encoded == again.calls == 0
    assert (repeat.current, repeat.candidate) == (result.current, result.candidate)
