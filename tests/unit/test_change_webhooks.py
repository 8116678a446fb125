"""Change events over HTTP into the log records that carry them: PagerDuty's change
events and triage's own change webhook."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from triage.domain.change import ChangeKind, change_from_event
from triage.domain.errors import InvalidEvent
from triage.domain.event import Limits
from triage.ingest.changes import PagerDutyChange, from_change_webhook, from_pagerduty_change

RECEIVED = datetime(2026, 3, 11, 14, 5, tzinfo=timezone.utc)

# PagerDuty's documented example of a change event.
PD_CHANGE = {
    "routing_key": "samplekeyhere",
    "payload": {
        "summary": "Build Success: Increase snapshot create timeout to 30 seconds",
        "timestamp": "2020-07-17T08:42:58.315+0000",
        "source": "acme-build-pipeline-tool-default-i-9999",
        "custom_details": {"build_state": "passed", "build_number": "2", "run_time": "1236s"},
    },
    "links": [{"href": "https://acme.pagerduty.dev/build/2", "text": "View more details in Acme!"}],
}


def test_a_pagerduty_change_event_becomes_a_change() -> None:
    result = from_pagerduty_change(PD_CHANGE, received_at=RECEIVED)
    assert result.routing_key == "samplekeyhere" and "samplekeyhere" not in repr(result)
    [event] = result.events
    assert "samplekeyhere" not in event.model_dump_json()
    change = change_from_event(event)
    assert change is not None
    assert change.occurred_at == datetime(2020, 7, 17, 8, 42, 58, 315000, tzinfo=timezone.utc)
    assert (change.service, change.kind, change.source, change.link) == (
        "acme-build-pipeline-tool-default-i-9999", ChangeKind.other, "pagerduty", "https://acme.pagerduty.dev/build/2")
    assert change.summary == "Build Success: Increase snapshot create timeout to 30 seconds"
    assert "build_number: 2" in change.description
    # a retry of the same event is the same change; another one is another
    assert from_pagerduty_change(PD_CHANGE, received_at=RECEIVED.replace(minute=9)).events[0].id == event.id
    other = {**PD_CHANGE, "payload": {**PD_CHANGE["payload"], "summary": "another"}}  # type: ignore[dict-item]
    assert from_pagerduty_change(other, received_at=RECEIVED).events[0].id != event.id
    assert PagerDutyChange.response_body() == {"status": "success", "message": "Change event processed"}


def test_custom_details_name_the_service_kind_version_and_who() -> None:
    body = {"routing_key": "k", "payload": {"summary": "cartservice v1.9 out", "source": "argo",
                                            "custom_details": {"service": "cartservice", "kind": "deploy",
                                                               "version": "v1.9", "author": "ana"}}}
    a = from_pagerduty_change(body, received_at=RECEIVED)
    change = change_from_event(a.events[0])
    assert change is not None
    assert (change.service, change.kind, change.version, change.who, change.occurred_at) == (
        "cartservice", ChangeKind.deploy, "v1.9", "ana", RECEIVED)   # no timestamp: when received
    # without a timestamp, the same body received later is another change
    assert from_pagerduty_change(body, received_at=RECEIVED.replace(minute=7)).events[0].id != a.events[0].id


@pytest.mark.parametrize("body,field", [
    ({"payload": {"summary": "x"}}, "routing_key"),
    ({"routing_key": "k"}, "payload.summary"),
    ({"routing_key": "k", "payload": {"summary": "x" * 1025}}, "payload.summary"),
    ({"routing_key": "k", "payload": {"summary": "x", "timestamp": "yesterday"}}, "payload.timestamp"),
    ({"routing_key": "k", "payload": {"summary": "x", "custom_details": "text"}}, "payload.custom_details"),
    ({"routing_key": "k", "payload": {"summary": "x"}, "links": [{"text": "no href"}]}, "links[0].href"),
    ({"routing_key": "k", "payload": {"summary": "x", "timestamp": "1900-01-01T00:00:00Z"}}, "occurred_at"),
    ({"routing_key": "k", "payload": {"summary": "x", "source": "s" * 201}}, "payload.source"),
    ({"routing_key": "k", "payload": {"summary": "x", "custom_details": {"version": "v\u0000"}}},
     "payload.custom_details.version"),
])
def test_a_bad_pagerduty_change_names_its_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        from_pagerduty_change(body, received_at=RECEIVED)
    assert caught.value.field == field, caught.value.reason


def test_the_change_webhook_takes_one_or_a_list() -> None:
    one = {"service": "cartservice", "kind": "config", "occurred_at": "2026-03-11T13:50:00+01:00",
           "description": "raise the pool size\npool 10 -> 20", "version": "cfg-42", "who": "ana",
           "link": "https://git.example/cfg/42", "source": "argo-cd"}
    [event] = from_change_webhook(one, received_at=RECEIVED)
    change = change_from_event(event)
    assert change is not None
    assert (change.service, change.kind, change.version, change.who, change.link, change.source) == (
        "cartservice", ChangeKind.config, "cfg-42", "ana", "https://git.example/cfg/42", "argo-cd")
    assert change.occurred_at == datetime(2026, 3, 11, 12, 50, tzinfo=timezone.utc)
    assert change.description == "raise the pool size\npool 10 -> 20" and event.title == "raise the pool size"
    assert from_change_webhook(one, received_at=RECEIVED)[0].id == event.id    # a retry: the same id
    events = from_change_webhook([one, {**one, "id": "deploy-7", "kind": "deploy"}], received_at=RECEIVED)
    assert [e.id for e in events][1] == "deploy-7"
    defaults = change_from_event(from_change_webhook({"service": "a", "description": "d"}, received_at=RECEIVED)[0])
    assert defaults is not None and (defaults.kind, defaults.source, defaults.occurred_at) == \
        (ChangeKind.deploy, "webhook", RECEIVED)


@pytest.mark.parametrize("body,field", [
    ({"description": "d"}, "service"),
    ({"service": "a"}, "description"),
    ({"service": "a", "description": "d", "kind": "reboot"}, "kind"),
    ({"service": "a", "description": "d", "occurred_at": "2026-03-11T13:50:00"}, "occurred_at"),
    ({"service": "a", "description": "d", "colour": "red"}, "colour"),
    ({"service": "a" * 201, "description": "d"}, "service"),
    ({"service": "a\u0000", "description": "d"}, "service"),
    ([{"service": "a", "description": "d"}, {"service": "b"}], "[1].description"),
    ({"service": "a", "description": "d" * 300}, "description"),
    ({"service": "a", "description": "d\n" + "e" * 300}, "description"),
])
def test_a_bad_change_names_its_field(body: object, field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        from_change_webhook(body, received_at=RECEIVED, limits=Limits(max_title_length=100, max_body_length=200))  # type: ignore[arg-type]
    assert caught.value.field == field, caught.value.reason
