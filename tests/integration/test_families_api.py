"""Alert families end to end: decisions stored, a periodic fit, GET /families, evidence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER, EMBEDDER_KIND, make_event
from triage.api import create_app
from triage.cli import cli
from triage.services.families_job import FIT_LEASE, FamiliesCache, FamiliesJob, fit_and_store
from triage.domain.event import Event
from triage.models.parameters import CorrelationParameters
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store.leases import claim, release

pytestmark = pytest.mark.integration

# The same two problems worded three ways each, and one alert like no other.
REDIS = ["Redis out of memory", "Redis memory usage above limit", "Redis used memory exceeds maxmemory"]
DISK = ["Disk space low on volume", "Disk almost full", "Filesystem almost out of free space"]
LONER = "Certificate expires soon"


def alert(seconds: float, event_id: str, title: str, service: str, fingerprint: str) -> Event:
    return make_event(seconds, id=event_id, title=title, service=service, fingerprint=fingerprint,
                      labels={"alertname": title.replace(" ", "")})


FIRST_BATCH = [
    alert(0, "r1", REDIS[0], "redis", "r1"),          # opens incident A (a page)
    alert(10, "r2", REDIS[1], "redis", "r2"),         # joins A: same service, similar text
    alert(20, "r3", REDIS[0], "redis", "r3"),         # joins A: same template, another fingerprint
    alert(30, "r1-again", REDIS[0], "redis", "r1"),   # a duplicate: counted in its template's family
    alert(5000, "d1", DISK[0], "node", "d1"),         # opens B (a page)
    alert(5010, "d2", DISK[1], "node", "d2"),         # joins B
    alert(9000, "r4", REDIS[2], "redis", "r4"),       # opens C, A's window is long closed (a page)
    alert(9100, "c1", LONER, "node", "c1"),           # opens D (a page): in no family
    alert(12000, "d3", DISK[2], "disk", "d3"),        # opens E (a page)
]
SECOND_BATCH = [alert(13000, "d4", DISK[1], "node", "d4")]   # opens F (a page)


@pytest.fixture
def client(store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, embedder=EMBEDDER)) as c:
        yield c


def test_before_the_first_fit_the_list_is_empty(client: TestClient, store: SqlStore) -> None:
    body = client.get("/families").json()
    assert body == {"version": None, "fitted_at": None, "templates_fitted": 0, "total": 0, "limit": 100, "offset": 0,
                    "next_offset": None, "items": []}
    assert client.get("/families/0").status_code == 404
    assert fit_and_store(store.engine, embedder=EMBEDDER, force=True) is None   # nothing decided yet: nothing to fit
    assert client.get("/families").json()["version"] is None


def test_fit_lists_families_with_exact_figures(client: TestClient, store: SqlStore) -> None:
    cache = FamiliesCache(store.engine, ttl_s=0)
    # auto_pause 0: first pages due at once, so the families' pages count them (the pause has its own tests)
    pipeline = Pipeline(store, EMBEDDER, families=cache, parameters=CorrelationParameters(auto_pause=0))
    pipeline(FIRST_BATCH)
    pipeline(SECOND_BATCH)
    incident = {e.id: incident_of(store, e.id) for e in FIRST_BATCH + SECOND_BATCH}
    assert incident["r2"] == incident["r3"] == incident["r1-again"] == incident["r1"]
    assert incident["d2"] == incident["d1"]
    assert len(set(incident.values())) == 6

    fitted_at = datetime(2026, 3, 12, 9, 0, tzinfo=timezone.utc)
    result = fit_and_store(store.engine, embedder=EMBEDDER, now=fitted_at, force=True)
    assert result is not None and (result.version, result.templates, result.families, result.outliers) == (1, 7, 2, 1)

    body = client.get("/families").json()
    assert (body["version"], body["fitted_at"], body["templates_fitted"], body["total"]) == \
        (1, "2026-03-12T09:00:00Z", 7, 2)
    redis, disk = body["items"]     # most events first: 5 (a duplicate counts too), then 4
    last_disk, last_redis = decided_at(store, "d4"), decided_at(store, "r4")
    assert disk == {"id": disk["id"], "size": 3, "events": 4, "incidents": 3,
                    "examples": ["Disk almost full", "Disk space low on volume", "Filesystem almost out of free space"],
                    "pages": 3, "last_seen": last_disk}
    assert redis == {"id": redis["id"], "size": 3,
                     "examples": [REDIS[0], *sorted(REDIS[1:])],   # REDIS[0] decided twice
                     "events": 5, "incidents": 2, "pages": 2,
                     "last_seen": last_redis}
    detail = client.get(f"/families/{redis['id']}").json()
    assert detail["templates"] == [{"text": REDIS[0], "events": 3}, {"text": REDIS[1], "events": 1},
                                   {"text": REDIS[2], "events": 1}]
    assert detail["version"] == 1 and client.get("/families/99").status_code == 404
    paged = client.get("/families", params={"limit": 1, "offset": 1}).json()
    assert [f["id"] for f in paged["items"]] == [disk["id"]] and paged["next_offset"] is None
    assert client.get("/families", params={"limit": 0}).status_code == 422

    # The correlator now gets the families: a join on a sibling template says so.
    pipeline([alert(20000, "r5", REDIS[0], "redis", "r5"), alert(20010, "r6", REDIS[2], "redis", "r6")])
    joined = client.get("/events/r6").json()["membership"]
    assert joined["action"] == "attached" and joined["evidence"]["incident"] == incident_of(store, "r5")
    assert joined["evidence"]["family"] == redis["id"] and joined["evidence"]["family_match"] is True
    assert "family" not in joined["evidence"]["components"]     # weight_family is 0: evidence only
    assert f"same alert family {redis['id']} (score" in joined["explanation"]

    # A refit keeps the ids; the figures move on.
    again = fit_and_store(store.engine, embedder=EMBEDDER, force=True)
    assert again is not None and again.version == 2
    refit = {f["id"]: f for f in client.get("/families").json()["items"]}
    assert set(refit) == {disk["id"], redis["id"]}
    assert (refit[redis["id"]]["events"], refit[redis["id"]]["incidents"], refit[redis["id"]]["pages"]) == (7, 3, 3)


def incident_of(store: SqlStore, event_id: str) -> str:
    stored = store.get_event(event_id)
    assert stored is not None and stored.membership is not None
    return stored.membership.incident_id


def decided_at(store: SqlStore, event_id: str) -> str:
    """As the API writes it."""
    stored = store.get_event(event_id)
    assert stored is not None and stored.membership is not None
    return stored.membership.decided_at.isoformat().replace("+00:00", "Z")


def test_replicas_fit_one_at_a_time_and_not_too_often(store: SqlStore) -> None:
    Pipeline(store, EMBEDDER)(FIRST_BATCH)
    now = datetime.now(timezone.utc)
    assert claim(store.engine, FIT_LEASE, "other-replica", now, ttl=timedelta(minutes=5))
    assert fit_and_store(store.engine, embedder=EMBEDDER, holder="me", interval_s=300) is None     # the other one is fitting
    release(store.engine, FIT_LEASE, "other-replica", now)
    first = fit_and_store(store.engine, embedder=EMBEDDER, holder="me", interval_s=300)
    assert first is not None and first.version == 1
    assert fit_and_store(store.engine, embedder=EMBEDDER, holder="other-replica", interval_s=300) is None   # fresh enough
    assert fit_and_store(store.engine, embedder=EMBEDDER, holder="other-replica", interval_s=0.001) is not None


def test_consumers_read_the_newest_fit_at_most_every_ttl(store: SqlStore) -> None:
    clock = [0.0]
    cache = FamiliesCache(store.engine, ttl_s=10, clock=lambda: clock[0])
    assert cache() is None
    Pipeline(store, EMBEDDER)(FIRST_BATCH)
    fit_and_store(store.engine, embedder=EMBEDDER, force=True)
    clock[0] = 9.9
    assert cache() is None                                   # not asked again yet
    clock[0] = 10.0
    first = cache()
    assert first is not None and len(first) == 2
    clock[0] = 20.0
    assert cache() is first                                  # same version: not reloaded
    fit_and_store(store.engine, embedder=EMBEDDER, force=True)
    clock[0] = 30.0
    assert cache() is not first and cache().members == first.members  # type: ignore[union-attr]


def test_cli_fits_once_and_prints_a_summary(store: SqlStore, store_url: str) -> None:
    Pipeline(store, EMBEDDER)(FIRST_BATCH)
    result = CliRunner().invoke(cli, ["families", "fit", "--database-url", store_url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("alert families v1: 7 templates, 2 families, 1 templates in none")
    assert lines[1].split() == ["id", "size", "events", "incidents", "pages", "last", "seen", "example"]
    assert len(lines) == 4


def test_the_periodic_fit_runs_in_a_process_of_its_own(store: SqlStore, store_url: str) -> None:
    Pipeline(store, EMBEDDER)(FIRST_BATCH)
    result = FamiliesJob(store_url, 300, holder="replica-1", embedder=EMBEDDER_KIND).run_once()
    assert result is not None and result.version == 1 and result.families == 2 and result.templates == 7
    assert FamiliesCache(store.engine)() is not None          # stored where the consumers read it
    assert FamiliesJob(store_url, 300, holder="replica-2", embedder=EMBEDDER_KIND).run_once() is None   # fresh enough: skipped


def test_a_failed_fit_is_reported_not_fatal(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'no-such-dir' / 'triage.db'}"
    with pytest.raises(RuntimeError, match="OperationalError"):
        FamiliesJob(missing, 300, holder="replica-1", embedder=EMBEDDER_KIND).run_once()
