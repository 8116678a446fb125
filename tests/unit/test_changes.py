"""Changes: the log records that carry them on Kafka, read back; the shared data's rollout
logs are changes; a new service.version is a deploy."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest

from tests.conftest import SHARED_DATA, T0, make_event, skip_or_fail
from triage.domain.change import Change, ChangeKind, change_as_event, change_from_event, version_change
from triage.ingest.decode import event_from_dict


@pytest.mark.parametrize("description", ["Rolled out v2", "Rolled out v2\nimage foo:v2 (was v1)\nby ci-bot",
                                         "aa\naab", "x" * 700])
def test_a_change_survives_its_log_record(description: str) -> None:
    change = Change(id="c-1", service="cartservice", kind=ChangeKind.config, occurred_at=T0,
                    description=description, source="webhook", version="v2", previous_version="v1",
                    who="ana", link="https://ci.example/run/7")
    event = change_as_event(change)
    assert event.kind.value == "log" and event.severity.value == "info" and len(event.title) <= 500
    assert change_from_event(event) == change
    # and through JSON, as the consumer decodes it
    assert change_from_event(event_from_dict(json.loads(event.model_dump_json()))) == change


def test_a_change_without_optional_fields_survives_too() -> None:
    change = Change(id="c-2", service=None, kind=ChangeKind.other, occurred_at=T0, description="Secret rotated",
                    source="pagerduty")
    assert change_from_event(change_as_event(change)) == change


def test_other_events_are_not_changes() -> None:
    assert change_from_event(make_event()) is None
    assert change_from_event(make_event(kind="log", labels={"event.type": "audit"})) is None
    assert change_from_event(make_event(kind="log", labels={"event.type": 3})) is None


def test_a_rollout_log_is_a_deploy() -> None:
    record = {"id": "bsevt-0000008", "kind": "log", "source": "otel", "occurred_at": "2026-03-11T00:25:12.533Z",
              "service": None, "host": None, "severity": "info", "status": "firing",
              "title": "Deployment adservice rolled out v1.8.6",
              "body": "deployment.apps/adservice image updated to x/adservice:v1.8.6 (was v1.8.5); rollout by ci-bot",
              "labels": {"event.type": "deployment", "k8s.deployment.name": "adservice", "version": "v1.8.6"},
              "fingerprint": None}
    change = change_from_event(event_from_dict(record))
    assert change is not None
    assert (change.id, change.service, change.kind, change.version, change.source) == \
        ("bsevt-0000008", "adservice", ChangeKind.deploy, "v1.8.6", "otel")
    assert change.summary == "Deployment adservice rolled out v1.8.6"
    assert change.description.endswith("rollout by ci-bot")


def test_an_unknown_change_kind_is_still_a_change() -> None:
    event = make_event(kind="log", severity="info", labels={"event.type": "change", "change.kind": "migration"})
    change = change_from_event(event)
    assert change is not None and change.kind is ChangeKind.other


@pytest.mark.parametrize("name,count", [("boutique-week", 5), ("boutique-storm", 2)])
def test_every_deployment_record_of_the_shared_data_is_a_deploy(name: str, count: int) -> None:
    path = SHARED_DATA / "alerts" / name / "events.jsonl.gz"
    if not path.exists():
        skip_or_fail(f"{path} is not here (shared/data beside the checkout)")
    changes = []
    with gzip.open(path, "rt") as f:
        for line in f:
            if '"event.type": "deployment"' in line:
                change = change_from_event(event_from_dict(json.loads(line)))
                if change is not None:
                    changes.append(change)
    assert len(changes) == count
    assert all(c.kind is ChangeKind.deploy and c.service and c.version for c in changes)


def test_a_new_version_is_a_deploy_with_a_stable_id() -> None:
    a = version_change("cart", "v2", T0, previous="v1")
    b = version_change("cart", "v2", T0 + timedelta(minutes=5), previous=None)
    assert a.id == b.id and a.id != version_change("cart", "v3", T0, previous="v2").id
    assert (a.kind, a.version, a.previous_version, a.description) == \
        (ChangeKind.deploy, "v2", "v1", "cart reports version v2 (was v1)")
