"""A batch between the fetching and the correlating process: the same events come out."""

from __future__ import annotations

from datetime import datetime, timezone

from triage.domain.event import Event, ServiceEdge
from triage.domain.wire import Prepared, pack_batch, unpack_batch
from triage.ingest.decode import decode_event


def test_events_and_edges_cross_unchanged() -> None:
    events = [
        decode_event(b'{"id": "a", "kind": "alert", "source": "am", "occurred_at": "2026-03-11T08:00:00.123456+02:00",'
                     b' "severity": "P1", "title": "Disk full", "labels": {"node": "n1", "x": 1.5, "ok": true},'
                     b' "fingerprint": "fp", "starts_at": "2026-03-11T07:59:00Z", "status": "resolved"}'),
        decode_event(b'{"id": "b", "kind": "span", "source": "otel", "occurred_at": "2026-03-11T08:00:01Z",'
                     b' "severity": "error", "title": "GET /x", "service": "cart", "parent_service": "web",'
                     b' "raw": {"deep": [1, {"k": null}]}, "body": "line\\u0000two"}'),
    ]
    edges = [ServiceEdge("web", "cart", datetime(2026, 3, 11, 8, tzinfo=timezone.utc))]
    prepared = Prepared({"a": "key-a"}, {"b": "{}"}, {"a": "disk full"}, {"disk full": bytes(8)},
                        {"a": ("a", "alert", "2026-03-11 06:00:00.123456")}, datetime(2026, 3, 11, 8, tzinfo=timezone.utc))
    got, got_edges, got_prepared = unpack_batch(pack_batch(events, edges, prepared))
    assert got == events and got_edges == edges and got_prepared == prepared
    for before, after in zip(events, got):
        assert type(after) is Event
        assert after.model_dump_json() == before.model_dump_json()
        assert after.model_fields_set == before.model_fields_set | set(Event.model_fields)
        assert after.severity is before.severity and after.occurred_at.tzinfo is timezone.utc
    # Frozen as the validated ones are.
    try:
        got[0].title = "x"   # type: ignore[misc]
    except Exception as exc:  # noqa: BLE001
        assert "frozen" in str(exc)
    else:
        raise AssertionError("an unpacked event could be changed")


def test_an_empty_batch() -> None:
    assert unpack_batch(pack_batch([], [])) == ([], [], None)
