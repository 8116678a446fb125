"""One set of bounds for every intake: a webhook refuses (413, or 422 naming the field and
the limit) exactly what the Kafka decoder dead-letters, so a caller is never told 202 for
an event the consumer will refuse."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER
from tests.unit.test_webhooks import ALERTMANAGER
from triage.api import create_app
from triage.domain.errors import DecodeError
from triage.domain.event import Event, Limits
from triage.ingest.kafka import decoder_for
from triage.store import SqlStore

pytestmark = pytest.mark.integration

LIMITS = Limits(max_message_bytes=16 * 1024, max_labels=20, max_label_key_length=40, max_label_value_length=200,
                max_title_length=300, max_body_length=2000)


class Accepted:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def submit(self, events: list[Event]) -> None:
        self.events.extend(events)


@pytest.fixture
def intake(sqlite_store: SqlStore) -> Iterator[tuple[TestClient, Accepted]]:
    sink = Accepted()
    app = create_app(sqlite_store, embedder=EMBEDDER, sink=sink, max_body_bytes=LIMITS.max_message_bytes,
                     limits=LIMITS)
    with TestClient(app) as client:
        yield client, sink


GOOD = {"id": "g-1", "kind": "alert", "source": "nagios", "occurred_at": "2026-03-11T14:00:00Z",
        "severity": "critical", "title": "Disk full", "labels": {"alertname": "DiskFull"}}

POISONS: list[tuple[str, dict[str, Any]]] = [
    ("year 9999", {"occurred_at": "9999-12-31T00:00:00Z"}),
    ("before 1970", {"occurred_at": "1969-07-20T20:17:00Z"}),
    ("offset past the calendar", {"occurred_at": "9999-12-31T23:59:59-01:00"}),
    ("NUL in id", {"id": "g\x00"}),
    ("NUL in service", {"service": "check\x00out"}),
    ("NUL in host", {"host": "node\x001"}),
    ("NUL in a label name", {"labels": {"alert\x00name": "x"}}),
    ("NUL in a label value", {"labels": {"alertname": "Disk\x00Full"}}),
    ("too many labels", {"labels": {f"l{i}": i for i in range(21)}}),
    ("label name too long", {"labels": {"k" * 41: 1}}),
    ("label value too long", {"labels": {"alertname": "A" * 201}}),
    ("title too long", {"title": "t" * 301}),
    ("body too long", {"body": "b" * 2001}),
]


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("name", "fields"), POISONS, ids=[p[0] for p in POISONS])
def test_a_webhook_refuses_what_the_consumer_dead_letters(intake: tuple[TestClient, Accepted], name: str,
                                                          fields: dict[str, Any]) -> None:
    client, sink = intake
    value = _json({**GOOD, **fields})
    with pytest.raises(DecodeError):
        decoder_for({"alerts": "alerts"}, (), LIMITS)("alerts", value)
    r = client.post("/webhooks/generic", content=value, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][1] in fields or name.startswith("offset")
    assert not sink.events


def test_non_finite_numbers_are_refused_on_both_intakes(intake: tuple[TestClient, Accepted]) -> None:
    client, sink = intake
    value = _json(GOOD)[:-1] + b', "raw": {"load": NaN}}'
    with pytest.raises(DecodeError, match="finite"):
        decoder_for({"alerts": "alerts"}, (), LIMITS)("alerts", value)
    r = client.post("/webhooks/generic", content=value, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "finite" in r.json()["detail"][0]["msg"]
    assert not sink.events


def test_the_limit_is_named_and_sizes_get_413(intake: tuple[TestClient, Accepted]) -> None:
    client, sink = intake
    body = copy.deepcopy(ALERTMANAGER)
    body["alerts"][2]["labels"]["alertname"] = "A" * 201
    r = client.post("/webhooks/alertmanager", json=body)
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "alerts", 2, "labels"] and "TRIAGE_MAX_LABEL_VALUE_LENGTH" in detail["msg"]
    big = _json({**GOOD, "body": "b" * 20_000})
    r = client.post("/webhooks/generic", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    with pytest.raises(DecodeError, match="TRIAGE_MAX_BODY_BYTES"):
        decoder_for({"alerts": "alerts"}, (), LIMITS)("alerts", big)
    assert not sink.events
    r = client.post("/webhooks/alertmanager", json=ALERTMANAGER)
    assert r.status_code == 202 and len(sink.events) == 3
