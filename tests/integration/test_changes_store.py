"""Changes through the pipeline into the store, on SQLite and PostgreSQL: stored once
whatever is redelivered, also in a batch whose events were all stored before; read back
by service and time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import EMBEDDER, T0, make_event
from triage.domain.change import Change, ChangeKind, change_as_event
from triage.domain.event import Event
from triage.services.pipeline import Pipeline
from triage.store import SqlStore
from triage.store.changes import ChangeStore

pytestmark = pytest.mark.integration


def change(id: str, service: str, minutes: float, kind: ChangeKind = ChangeKind.deploy) -> Change:
    return Change(id=id, service=service, kind=kind, occurred_at=T0 + timedelta(minutes=minutes),
                  description=f"{id} on {service}", source="webhook", version="v2", who="ci-bot")


def carried(c: Change) -> Event:
    return change_as_event(c)


def test_changes_are_stored_once_and_read_back_by_service_and_time(store: SqlStore) -> None:
    pipeline = Pipeline(store, EMBEDDER)
    a, b, c = change("c-a", "cart", -30), change("c-b", "cart", -5, ChangeKind.config), change("c-c", "redis", -1)
    alert = make_event(0, id="alert-1", fingerprint="f1")
    result = pipeline([carried(a), alert, carried(b)])
    assert result.stored == 1 and result.incidents_opened == 1   # the alert alone: changes open nothing
    # redelivered: the alert is known, the changes again, and a change the first batch did not hold
    result = pipeline([carried(b), alert, carried(c), carried(a)])
    assert result.stored == 0
    found = ChangeStore(store.engine)
    assert [x.id for x in found.changes_near(None)] == ["c-c", "c-b", "c-a"]      # newest first
    assert found.changes_near({"cart"}, T0 - timedelta(minutes=10), T0) == [b]
    assert found.changes_near({"cart", "redis"}, T0 - timedelta(minutes=10)) == [c, b]
    assert found.changes_near(set()) == [] and found.get("c-a") == a
    assert store.get_event("c-a") is None


def test_a_batch_of_changes_alone_is_stored(store: SqlStore) -> None:
    Pipeline(store, EMBEDDER)([carried(change("only", "cart", 0))])
    assert [x.id for x in ChangeStore(store.engine).changes_near({"cart"})] == ["only"]


def test_versions_reported_make_one_deploy_whichever_consumer_sees_them(store: SqlStore) -> None:
    def log(seconds: float, version: str, id: str) -> Event:
        return make_event(seconds, id=id, kind="log", severity="info", title="served", service="cart",
                          labels={"service.version": version})

    first, second = Pipeline(store, EMBEDDER), Pipeline(store, EMBEDDER)   # two consumers, each with its own memory
    first([log(0, "1.0", "l1")])
    second([log(10, "1.0", "l2"), log(20, "1.1", "l3")])
    first([log(30, "1.1", "l4"), log(25, "1.1", "l5")])  # knows 1.0 only: asks the store, finds 1.1 known
    [deploy] = ChangeStore(store.engine).changes_near({"cart"})
    assert (deploy.version, deploy.previous_version, deploy.occurred_at) == ("1.1", "1.0", T0 + timedelta(seconds=20))
    # a deploy a change record announced is not a second change when the service reports it
    first([carried(Change(id="rollout-1.2", service="cart", kind=ChangeKind.deploy, occurred_at=T0 + timedelta(seconds=60),
                          description="cart 1.2", source="webhook", version="1.2")), log(70, "1.2", "l6")])
    assert [c.id for c in ChangeStore(store.engine).changes_near({"cart"})] == ["rollout-1.2", deploy.id]
