"""Webhook translators, fed bodies shaped like each vendor's documented examples."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from triage.correlation.identity import dedup_key
from triage.domain.errors import InvalidEvent
from triage.domain.event import EventKind, Severity, Status
from triage.ingest.webhooks import (
    DATADOG_PAYLOAD_TEMPLATE,
    SEVERITY_DEFAULTED,
    from_alertmanager,
    from_datadog,
    from_generic,
    from_grafana,
    from_pagerduty_event,
    from_pagerduty_webhook,
    verify_pagerduty_signature,
)

RECEIVED = datetime(2026, 3, 11, 14, 0, tzinfo=timezone.utc)
UTC = timezone.utc

# --------------------------------------------------------------------------- Alertmanager

ALERTMANAGER: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="EndpointDown"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "triage",
    "groupLabels": {"alertname": "EndpointDown"},
    "commonLabels": {"alertname": "EndpointDown", "job": "blackbox"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example.net:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "EndpointDown", "instance": "https://shop.example.net",
                       "job": "blackbox", "region": "eu-1", "severity": "critical"},
            "annotations": {"description": "https://shop.example.net failed every probe for 5 minutes.",
                            "summary": "Endpoint https://shop.example.net is unreachable"},
            "startsAt": "2026-03-11T13:52:10.412Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=probe_success+%3D%3D+0",
            "fingerprint": "5d1c0a9e7b3f2468",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "ContainerKilled", "instance": "10.1.212.234:8080", "job": "kubernetes-pods",
                       "service": "recommendationservice", "node": "gke-pool-3e917dfe-2qzs", "severity": "warning"},
            "annotations": {"description": "A container has disappeared"},
            "startsAt": "2026-03-11T15:40:00.739266876+02:00",
            "endsAt": "2026-03-11T13:55:00Z",
            "generatorURL": "http://prometheus.example.net:9090/graph",
            "fingerprint": "385909ed4d2d6b07",
        },
        {
            "status": "firing",
            "labels": {"alertname": "Watchdog", "instance": "10.0.0.12:8080", "job": "apiserver"},
            "annotations": {},
            "startsAt": "2026-03-11T13:50:00Z",
            "endsAt": "2026-03-11T13:54:00Z",
            "generatorURL": "",
            "fingerprint": "37dcc2557b77f17d",
        },
    ],
}


def test_alertmanager_group_mixing_firing_and_resolved() -> None:
    firing, resolved, unlabeled = from_alertmanager(copy.deepcopy(ALERTMANAGER), received_at=RECEIVED)

    assert firing.kind is EventKind.alert and firing.source == "alertmanager"
    assert firing.status is Status.firing and firing.severity is Severity.critical
    assert firing.fingerprint == "5d1c0a9e7b3f2468"
    assert firing.title == "Endpoint https://shop.example.net is unreachable"
    assert firing.body.startswith("https://shop.example.net failed every probe")
    assert firing.occurred_at == firing.starts_at == datetime(2026, 3, 11, 13, 52, 10, 412000, tzinfo=UTC)
    assert firing.ends_at is None  # Go's zero time
    assert firing.service == "blackbox" and firing.host == "shop.example.net"
    assert firing.labels["region"] == "eu-1"
    assert firing.raw is not None and firing.raw["receiver"] == "triage"
    assert firing.raw["groupKey"] == ALERTMANAGER["groupKey"]
    assert firing.raw["externalURL"] == "http://alertmanager.example.net:9093"

    assert resolved.status is Status.resolved and resolved.severity is Severity.warning
    assert resolved.occurred_at == resolved.ends_at == datetime(2026, 3, 11, 13, 55, tzinfo=UTC)
    assert resolved.starts_at == datetime(2026, 3, 11, 13, 40, 0, 739266, tzinfo=UTC)  # nanoseconds, +02:00
    assert resolved.service == "recommendationservice" and resolved.host == "gke-pool-3e917dfe-2qzs"
    # Title falls back to the alertname when there is no summary annotation.
    assert resolved.title == "ContainerKilled"

    # A firing alert's endsAt is Prometheus' expiry hint, not an end.
    assert unlabeled.ends_at is None
    assert unlabeled.host == "10.0.0.12"


def test_alertmanager_missing_severity_label_defaults_to_warning_visibly() -> None:
    *_, unlabeled = from_alertmanager(copy.deepcopy(ALERTMANAGER), received_at=RECEIVED)
    assert unlabeled.severity is Severity.warning
    assert unlabeled.labels[SEVERITY_DEFAULTED] is True
    labeled = from_alertmanager(copy.deepcopy(ALERTMANAGER), received_at=RECEIVED)[0]
    assert SEVERITY_DEFAULTED not in labeled.labels


def test_alertmanager_unknown_severity_names_the_field() -> None:
    body = copy.deepcopy(ALERTMANAGER)
    body["alerts"][1]["labels"]["severity"] = "spicy"
    with pytest.raises(InvalidEvent) as exc:
        from_alertmanager(body, received_at=RECEIVED)
    assert exc.value.field == "alerts[1].labels.severity"
    assert "spicy" in exc.value.reason


@pytest.mark.parametrize("mutate,field", [
    (lambda b: b.update(version="3"), "version"),
    (lambda b: b.pop("alerts"), "alerts"),
    (lambda b: b["alerts"][0].update(status="pending"), "alerts[0].status"),
    (lambda b: b["alerts"][0].pop("startsAt"), "alerts[0].startsAt"),
    (lambda b: b["alerts"][0].update(startsAt="2023-02-06T13:08:45"), "alerts[0].startsAt"),
    (lambda b: b["alerts"][1].update(endsAt="0001-01-01T00:00:00Z"), "alerts[1].endsAt"),
    (lambda b: b["alerts"][0]["labels"].update(job=["a"]), "alerts[0].labels.job"),
])
def test_alertmanager_bad_input_names_the_field(mutate: Any, field: str) -> None:
    body = copy.deepcopy(ALERTMANAGER)
    mutate(body)
    with pytest.raises(InvalidEvent) as exc:
        from_alertmanager(body, received_at=RECEIVED)
    assert exc.value.field == field
    assert field.split(".")[-1].split("[")[0] in exc.value.reason


def test_alertmanager_renotification_is_a_new_event_with_the_same_fingerprint() -> None:
    first = from_alertmanager(copy.deepcopy(ALERTMANAGER), received_at=RECEIVED)[0]
    again = from_alertmanager(copy.deepcopy(ALERTMANAGER), received_at=RECEIVED + timedelta(hours=4))[0]
    same = from_alertmanager(copy.deepcopy(ALERTMANAGER), received_at=RECEIVED)[0]
    assert first.id != again.id  # a re-notification is a delivery of its own...
    assert dedup_key(first) == dedup_key(again)  # ...that the correlator sees as the same signal
    assert first.id == same.id  # deterministic


def test_alertmanager_rejects_non_objects() -> None:
    not_an_object: Any = []
    with pytest.raises(InvalidEvent, match="JSON object"):
        from_alertmanager(not_an_object, received_at=RECEIVED)
    with pytest.raises(ValueError, match="timezone-aware"):
        from_alertmanager(copy.deepcopy(ALERTMANAGER), received_at=datetime(2026, 3, 11))


# --------------------------------------------------------------------------- Grafana

GRAFANA: dict[str, Any] = {
    "receiver": "triage",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "Memory pressure", "team": "payments", "zone": "eu-west-1", "severity": "critical",
                       "service": "cart"},
            "annotations": {"description": "cart pods use 91% of their memory limit",
                            "runbook_url": "https://runbooks.example.net/cart-memory",
                            "summary": "cart memory above 90% in eu-west-1"},
            "startsAt": "2026-03-11T15:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://grafana.example.net/alerting/cart-mem/edit",
            "fingerprint": "0f4e2a61d9b8c357",
            "silenceURL": "https://grafana.example.net/alerting/silence/new?alertmanager=grafana",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"A": 91.2544, "B": 1},
        },
        {
            "status": "resolved",
            "labels": {"alertname": "CPU saturation", "team": "payments", "zone": "eu-west-2"},
            "annotations": {"description": "checkout CPU throttled",
                            "summary": "checkout CPU above 95% in eu-west-2"},
            "startsAt": "2026-03-11T15:56:03.157076+02:00",
            "endsAt": "2026-03-11T16:06:03.157076+02:00",
            "generatorURL": "https://grafana.example.net/alerting/checkout-cpu/edit",
            "fingerprint": "a83c5e17f0b2d946",
            "silenceURL": "https://grafana.example.net/alerting/silence/new?alertmanager=grafana",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"A": 97.01, "B": 1},
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "payments"},
    "commonAnnotations": {},
    "externalURL": "https://grafana.example.net/",
    "version": "1",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "title": "[FIRING:1, RESOLVED:1]  (payments)",
    "state": "alerting",
    "message": "**Firing**\n\nLabels:\n - alertname = Memory pressure\n",
}


def test_grafana_alerts_become_events() -> None:
    memory, cpu = from_grafana(copy.deepcopy(GRAFANA), received_at=RECEIVED)
    assert memory.source == "grafana" and memory.status is Status.firing
    assert memory.severity is Severity.critical and memory.service == "cart"
    assert memory.fingerprint == "0f4e2a61d9b8c357"
    assert memory.title == "cart memory above 90% in eu-west-1"
    assert memory.labels["grafana.value.A"] == pytest.approx(91.2544)
    assert memory.raw is not None and memory.raw["generatorURL"].endswith("/edit")
    assert memory.occurred_at == datetime(2026, 3, 11, 13, 51, 3, 157076, tzinfo=UTC)

    assert cpu.status is Status.resolved and cpu.occurred_at == datetime(2026, 3, 11, 14, 6, 3, 157076, tzinfo=UTC)
    assert cpu.severity is Severity.warning and cpu.labels[SEVERITY_DEFAULTED] is True


def test_grafana_checks_its_own_version() -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_grafana(copy.deepcopy(ALERTMANAGER), received_at=RECEIVED)
    assert exc.value.field == "version"


def test_grafana_unknown_severity_is_rejected() -> None:
    body = copy.deepcopy(GRAFANA)
    body["alerts"][0]["labels"]["severity"] = "sev-0"
    with pytest.raises(InvalidEvent) as exc:
        from_grafana(body, received_at=RECEIVED)
    assert exc.value.field == "alerts[0].labels.severity"


# --------------------------------------------------------------------------- PagerDuty Events API v2

PD_TRIGGER: dict[str, Any] = {
    "payload": {
        "summary": "Replication lag above 60s on db-2.example.net",
        "timestamp": "2026-03-11T13:58:12.250+0000",
        "source": "db-2.example.net",
        "severity": "error",
        "component": "postgres",
        "group": "orders-db",
        "class": "replication lag",
        "custom_details": {"lag seconds": 94, "primary": "db-1.example.net"},
    },
    "routing_key": "R0UT1NGK3Y0000000000000000000000",
    "dedup_key": "orders-db-replication-lag",
    "images": [{"src": "https://grafana.example.net/render/lag.png", "href": "https://grafana.example.net/d/replication", "alt": "Replication lag, last hour"}],
    "links": [{"href": "https://grafana.example.net/d/replication", "text": "Replication dashboard"}],
    "event_action": "trigger",
    "client": "checkmon",
    "client_url": "https://checkmon.example.net",
}


def _contains(obj: Any, needle: str) -> bool:
    return needle in json.dumps(obj, default=str)


def test_pagerduty_trigger() -> None:
    result = from_pagerduty_event(copy.deepcopy(PD_TRIGGER), received_at=RECEIVED)
    (event,) = result.events
    assert result.dedup_key == "orders-db-replication-lag"
    assert result.response_body() == {"status": "success", "message": "Event processed",
                                      "dedup_key": "orders-db-replication-lag"}
    assert event.source == "pagerduty" and event.status is Status.firing and event.severity is Severity.error
    assert event.fingerprint == "orders-db-replication-lag" and event.title == "Replication lag above 60s on db-2.example.net"
    assert event.host == "db-2.example.net" and event.service == "orders-db"
    assert event.occurred_at == datetime(2026, 3, 11, 13, 58, 12, 250000, tzinfo=UTC)
    assert event.labels["pagerduty.component"] == "postgres" and event.labels["pagerduty.class"] == "replication lag"
    assert "lag seconds: 94" in event.body and "primary: db-1.example.net" in event.body
    assert event.raw is not None and event.raw["links"][0]["text"] == "Replication dashboard"


def test_pagerduty_routing_key_never_leaks() -> None:
    result = from_pagerduty_event(copy.deepcopy(PD_TRIGGER), received_at=RECEIVED)
    secret = PD_TRIGGER["routing_key"]
    assert result.routing_key == secret  # handed to the endpoint to authenticate...
    assert secret not in repr(result)  # ...but never shown
    for event in result.events:
        assert not _contains(event.model_dump(mode="json"), secret)


def test_pagerduty_missing_routing_key_is_an_error() -> None:
    body = copy.deepcopy(PD_TRIGGER)
    del body["routing_key"]
    with pytest.raises(InvalidEvent) as exc:
        from_pagerduty_event(body, received_at=RECEIVED)
    assert exc.value.field == "routing_key" and "routing_key is required" in exc.value.reason


def test_pagerduty_acknowledge_and_resolve_follow_the_trigger() -> None:
    trigger = from_pagerduty_event(copy.deepcopy(PD_TRIGGER), received_at=RECEIVED).events[0]
    ack = from_pagerduty_event({"routing_key": "R0UT1NGK3Y0000000000000000000001", "dedup_key": "orders-db-replication-lag",
                                "event_action": "acknowledge"}, received_at=RECEIVED + timedelta(minutes=1))
    resolve = from_pagerduty_event({"routing_key": "R0UT1NGK3Y0000000000000000000001", "dedup_key": "orders-db-replication-lag",
                                    "event_action": "resolve"}, received_at=RECEIVED + timedelta(minutes=9))
    (a,) = ack.events
    (r,) = resolve.events
    assert a.status is Status.firing and a.labels["pagerduty.action"] == "acknowledge"
    assert a.severity is Severity.info and a.labels[SEVERITY_DEFAULTED] is True
    assert a.occurred_at == RECEIVED + timedelta(minutes=1)
    assert r.status is Status.resolved and r.ends_at == r.occurred_at
    assert dedup_key(trigger) == dedup_key(a) == dedup_key(r)
    assert len({trigger.id, a.id, r.id}) == 3


def test_pagerduty_trigger_without_dedup_key_gets_a_deterministic_one() -> None:
    body = copy.deepcopy(PD_TRIGGER)
    del body["dedup_key"]
    first = from_pagerduty_event(copy.deepcopy(body), received_at=RECEIVED)
    body["payload"]["timestamp"] = "2026-03-11T14:30:00Z"  # a later repeat of the same problem
    body["payload"]["severity"] = "critical"
    again = from_pagerduty_event(body, received_at=RECEIVED + timedelta(minutes=5))
    assert first.dedup_key == again.dedup_key and first.dedup_key.startswith("triage-")
    assert first.events[0].fingerprint == first.dedup_key
    other = copy.deepcopy(body)
    other["payload"]["summary"] = "Another problem"
    assert from_pagerduty_event(other, received_at=RECEIVED).dedup_key != first.dedup_key


@pytest.mark.parametrize("mutate,field", [
    (lambda b: b.update(event_action="snooze"), "event_action"),
    (lambda b: b["payload"].update(severity="fatal"), "payload.severity"),
    (lambda b: b["payload"].pop("severity"), "payload.severity"),
    (lambda b: b["payload"].pop("summary"), "payload.summary"),
    (lambda b: b["payload"].pop("source"), "payload.source"),
    (lambda b: b["payload"].update(summary="x" * 1025), "payload.summary"),
    (lambda b: b.update(dedup_key="k" * 256), "dedup_key"),
    (lambda b: b["payload"].update(timestamp="yesterday"), "payload.timestamp"),
    (lambda b: b.update(event_action="resolve", dedup_key=None), "dedup_key"),
])
def test_pagerduty_bad_events_name_the_field(mutate: Any, field: str) -> None:
    body = copy.deepcopy(PD_TRIGGER)
    mutate(body)
    with pytest.raises(InvalidEvent) as exc:
        from_pagerduty_event(body, received_at=RECEIVED)
    assert exc.value.field == field


# --------------------------------------------------------------------------- PagerDuty Webhooks v3

PD_WEBHOOK_INCIDENT: dict[str, Any] = {
    "event": {
        "id": "01HZX3G9K2Q7W8E4R5T6Y7U8I9",
        "event_type": "incident.acknowledged",
        "resource_type": "incident",
        "occurred_at": "2026-03-11T14:03:09.521Z",
        "agent": {"html_url": "https://shopco.pagerduty.com/users/PU8ZK2M", "id": "PU8ZK2M",
                  "self": "https://api.pagerduty.com/users/PU8ZK2M", "summary": "Dana Okafor",
                  "type": "user_reference"},
        "client": {"name": "PagerDuty"},
        "data": {
            "id": "Q1XK4TZ7",
            "type": "incident",
            "self": "https://api.pagerduty.com/incidents/Q1XK4TZ7",
            "html_url": "https://shopco.pagerduty.com/incidents/Q1XK4TZ7",
            "number": 2,
            "status": "acknowledged",
            "incident_key": "triage-8f2c1d0e9b7a6c5d4e3f2a1b",
            "created_at": "2026-03-11T13:58:40Z",
            "title": "Checkout errors above 5%",
            "service": {"html_url": "https://shopco.pagerduty.com/services/PSVC0R1", "id": "PSVC0R1",
                        "self": "https://api.pagerduty.com/services/PSVC0R1", "summary": "Checkout",
                        "type": "service_reference"},
            "assignees": [{"html_url": "https://shopco.pagerduty.com/users/PA55IGN", "id": "PA55IGN",
                           "self": "https://api.pagerduty.com/users/PA55IGN", "summary": "Lee Marsh",
                           "type": "user_reference"}],
            "escalation_policy": {"id": "PESC4L8", "summary": "Default", "type": "escalation_policy_reference"},
            "teams": [{"id": "PTEAM01", "summary": "Payments", "type": "team_reference"}],
            "priority": {"id": "PPRI001", "summary": "P1", "type": "priority_reference"},
            "urgency": "high",
            "conference_bridge": {"conference_number": "+1 5550100,,2468#",
                                  "conference_url": "https://meet.example.net/inc"},
            "resolve_reason": None,
        },
    }
}


@pytest.mark.parametrize("event_type,status", [
    ("incident.triggered", "triggered"), ("incident.acknowledged", "acknowledged"),
    ("incident.resolved", "resolved"), ("incident.reassigned", "triggered"),
])
def test_pagerduty_webhook_incident_events(event_type: str, status: str) -> None:
    body = copy.deepcopy(PD_WEBHOOK_INCIDENT)
    body["event"]["event_type"] = event_type
    body["event"]["data"]["status"] = status
    fb = from_pagerduty_webhook(body, received_at=RECEIVED)
    assert fb.event_id == "01HZX3G9K2Q7W8E4R5T6Y7U8I9" and fb.event_type == event_type
    assert fb.incident_id == "Q1XK4TZ7" and fb.incident_number == 2 and fb.status == status
    assert fb.incident_key == "triage-8f2c1d0e9b7a6c5d4e3f2a1b"
    assert fb.title == "Checkout errors above 5%" and fb.urgency == "high" and fb.priority == "P1"
    assert fb.service is not None and fb.service.name == "Checkout"
    assert fb.agent is not None and (fb.agent.id, fb.agent.name) == ("PU8ZK2M", "Dana Okafor")
    assert [a.name for a in fb.assignees] == ["Lee Marsh"]
    assert fb.occurred_at == datetime(2026, 3, 11, 14, 3, 9, 521000, tzinfo=UTC)
    assert fb.resolution is None


def test_pagerduty_webhook_resolution_and_automation_agent() -> None:
    body = copy.deepcopy(PD_WEBHOOK_INCIDENT)
    body["event"].update(event_type="incident.resolved", agent=None)
    body["event"]["data"].update(status="resolved", resolve_reason={"type": "merge_resolve_reason",
                                                                    "incident": {"id": "PXXXXXX"}})
    fb = from_pagerduty_webhook(body, received_at=RECEIVED)
    assert fb.agent is None and fb.resolution == "merge_resolve_reason"


def test_pagerduty_webhook_responder_added_and_annotated() -> None:
    incident_ref = {"html_url": "https://shopco.pagerduty.com/incidents/Q1XK4TZ7", "id": "Q1XK4TZ7",
                    "self": "https://api.pagerduty.com/incidents/Q1XK4TZ7", "summary": "Checkout errors above 5%",
                    "type": "incident_reference"}
    responder = copy.deepcopy(PD_WEBHOOK_INCIDENT)
    responder["event"].update(event_type="incident.responder.added", data={
        "incident": incident_ref,
        "user": {"html_url": "https://shopco.pagerduty.com/users/PRESP42", "id": "PRESP42",
                 "self": "https://api.pagerduty.com/users/PRESP42", "summary": "Sam Ortiz", "type": "user_reference"},
        "escalation_policy": {"id": "PESC9Q2", "summary": "Payments on-call", "type": "escalation_policy_reference"},
        "message": "Can you check the payment gateway?",
        "state": "pending",
        "type": "incident_responder",
    })
    fb = from_pagerduty_webhook(responder, received_at=RECEIVED)
    assert fb.incident_id == "Q1XK4TZ7" and fb.title == "Checkout errors above 5%"
    assert [r.name for r in fb.responders] == ["Sam Ortiz"] and fb.note == "Can you check the payment gateway?"
    assert fb.incident_number is None

    note = copy.deepcopy(PD_WEBHOOK_INCIDENT)
    note["event"].update(event_type="incident.annotated", data={
        "incident": incident_ref, "id": "PNOTE77", "content": "Root cause: bad deploy of cart v2.3",
        "trimmed": False, "type": "incident_note",
    })
    fb = from_pagerduty_webhook(note, received_at=RECEIVED)
    assert fb.note == "Root cause: bad deploy of cart v2.3" and fb.responders == ()


@pytest.mark.parametrize("mutate,field", [
    (lambda b: b["event"].update(event_type="service.updated"), "event.event_type"),
    (lambda b: b["event"].update(event_type="incident.exploded"), "event.event_type"),
    (lambda b: b["event"].pop("id"), "event.id"),
    (lambda b: b["event"].pop("occurred_at"), "event.occurred_at"),
    (lambda b: b["event"]["data"].update(type="incident_note"), "event.data.type"),
    (lambda b: b["event"]["data"].update(number="two"), "event.data.number"),
    (lambda b: b.pop("event"), "event"),
])
def test_pagerduty_webhook_bad_input_names_the_field(mutate: Any, field: str) -> None:
    body = copy.deepcopy(PD_WEBHOOK_INCIDENT)
    mutate(body)
    with pytest.raises(InvalidEvent) as exc:
        from_pagerduty_webhook(body, received_at=RECEIVED)
    assert exc.value.field == field


def _sign(body: bytes, secret: str) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_pagerduty_signature() -> None:
    raw = json.dumps(PD_WEBHOOK_INCIDENT, ensure_ascii=False).encode() + " café".encode()
    old, new = "old-secret-0123456789", "new-secret-9876543210"
    assert verify_pagerduty_signature(raw, _sign(raw, old), [old])
    # Rotation: PagerDuty sends one signature per active secret, comma-separated.
    rotated = f"{_sign(raw, new)},{_sign(raw, old)}"
    assert verify_pagerduty_signature(raw, rotated, [old])
    assert verify_pagerduty_signature(raw, rotated, [new])
    assert verify_pagerduty_signature(raw, f"{_sign(raw, old)}, {_sign(raw, new)}", ["other", new])
    # Invalid: another secret, a changed body, a foreign version prefix, no header, no secret.
    assert not verify_pagerduty_signature(raw, _sign(raw, "attacker"), [old])
    assert not verify_pagerduty_signature(raw + b" ", _sign(raw, old), [old])
    assert not verify_pagerduty_signature(raw, _sign(raw, old).replace("v1=", "v2="), [old])
    assert not verify_pagerduty_signature(raw, None, [old])
    assert not verify_pagerduty_signature(raw, "", [old])
    assert not verify_pagerduty_signature(raw, _sign(raw, old), [])
    assert not verify_pagerduty_signature(raw, "v1=", [old])


# --------------------------------------------------------------------------- Datadog


def _datadog(**overrides: Any) -> dict[str, Any]:
    """What Datadog posts for DATADOG_PAYLOAD_TEMPLATE, with the documented example values."""
    filled = (DATADOG_PAYLOAD_TEMPLATE
              .replace("$ID", "8125549261130458112")
              .replace("$EVENT_TITLE", "[Triggered on {host:web-7}] Load above 4 on web-7")
              .replace("$TEXT_ONLY_MSG", "web-7 load is 6.2. @webhook-triage")
              .replace("$ALERT_TRANSITION", "Triggered")
              .replace("$ALERT_TYPE", "error")
              .replace("$ALERT_ID", "40817")
              .replace("$ALERT_TITLE", "[Triggered on {host:web-7}] Load above 4 on web-7")
              .replace("$ALERT_CYCLE_KEY", "cyc-99")
              .replace("$AGGREG_KEY", "e41f0b7c29d35a8614c0f2b9d7e3a516")
              .replace("$ALERT_PRIORITY", "P1")
              .replace("$PRIORITY", "normal")
              .replace("$ALERT_SCOPE", "host:web-7, availability-zone:eu-west-1b")
              .replace("$ALERT_QUERY", "avg(last_5m):avg:system.load.1{*} by {host} > 4")
              .replace("$ALERT_METRIC", "system.load.1")
              .replace("$HOSTNAME", "web-7")
              .replace("$TAGS", "monitor, service:checkout, env:prod, role:frontend")
              .replace("$LAST_UPDATED", "1773237480000")
              .replace("$DATE", "1773237480000")
              .replace("$LINK", "https://app.datadoghq.com/event/event?id=8125549261130458112")
              .replace("$EVENT_TYPE", "query_alert_monitor")
              .replace("$ORG_ID", "20931")
              .replace("$ORG_NAME", "ShopCo"))
    assert "$" not in filled
    body: dict[str, Any] = json.loads(filled)
    body.update(overrides)
    return body


def test_datadog_triggered() -> None:
    (event,) = from_datadog(_datadog(), received_at=RECEIVED)
    assert event.source == "datadog" and event.kind is EventKind.alert and event.status is Status.firing
    assert event.id == "datadog-8125549261130458112"
    assert event.fingerprint == "e41f0b7c29d35a8614c0f2b9d7e3a516"
    assert event.severity is Severity.critical and event.severity_raw == "P1"
    assert event.title == "[Triggered on {host:web-7}] Load above 4 on web-7"
    assert event.body.startswith("web-7 load is 6.2")
    assert event.service == "checkout" and event.host == "web-7"
    assert event.occurred_at == datetime(2026, 3, 11, 13, 58, 0, tzinfo=UTC)
    assert event.labels["env"] == "prod" and event.labels["monitor"] is True
    assert event.labels["availability-zone"] == "eu-west-1b"
    assert event.labels["datadog.alert_id"] == "40817" and event.labels["datadog.transition"] == "Triggered"


def test_datadog_recovered_resolves_the_same_signal() -> None:
    (triggered,) = from_datadog(_datadog(), received_at=RECEIVED)
    (recovered,) = from_datadog(_datadog(id="8125549261130459999", transition="Recovered", alert_type="success",
                                         date="1773238080000"), received_at=RECEIVED)
    assert recovered.status is Status.resolved and recovered.ends_at == recovered.occurred_at
    assert dedup_key(recovered) == dedup_key(triggered) and recovered.id != triggered.id


@pytest.mark.parametrize("overrides,severity,status", [
    ({"transition": "Warn", "alert_type": "warning"}, Severity.warning, Status.firing),
    ({"transition": "Re-Warn"}, Severity.warning, Status.firing),
    ({"transition": "Re-Triggered", "alert_priority": "P2"}, Severity.error, Status.firing),
    ({"transition": "Renotify", "alert_priority": "P3"}, Severity.warning, Status.firing),
    ({"transition": "No Data", "alert_priority": "P4"}, Severity.info, Status.firing),
    ({"transition": "Re-No Data", "alert_priority": "", "alert_type": "error"}, Severity.error, Status.firing),
    ({"transition": "Triggered", "alert_priority": "", "alert_type": "warning"}, Severity.warning, Status.firing),
    ({"transition": "Recovered", "alert_priority": "", "alert_type": "success"}, Severity.info, Status.resolved),
])
def test_datadog_transitions_and_severities_map_explicitly(overrides: dict[str, Any], severity: Severity,
                                                            status: Status) -> None:
    (event,) = from_datadog(_datadog(**overrides), received_at=RECEIVED)
    assert (event.severity, event.status) == (severity, status)


def test_datadog_no_data_is_labeled() -> None:
    (event,) = from_datadog(_datadog(transition="No Data"), received_at=RECEIVED)
    assert event.labels["datadog.no_data"] is True


@pytest.mark.parametrize("overrides,field", [
    ({"transition": "Exploded"}, "transition"),
    ({"transition": ""}, "transition"),
    ({"alert_priority": "P0"}, "alert_priority"),
    ({"alert_priority": "", "alert_type": "spicy"}, "alert_type"),
    ({"alert_priority": "", "alert_type": ""}, "alert_type"),
    ({"date": "sometime", "last_updated": ""}, "date"),
])
def test_datadog_bad_input_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_datadog(_datadog(**overrides), received_at=RECEIVED)
    assert exc.value.field == field


def test_datadog_default_payload_is_rejected_with_a_pointer_to_the_template() -> None:
    default = {"body": "@webhook-triage load high", "last_updated": "1773237480000",
               "event_type": "query_alert_monitor", "title": "[Triggered] Load above 4", "date": "1773237480000",
               "org": {"id": "20931", "name": "ShopCo"}, "id": "8125549261130458112"}
    with pytest.raises(InvalidEvent, match="DATADOG_PAYLOAD_TEMPLATE") as exc:
        from_datadog(default, received_at=RECEIVED)
    assert exc.value.field == "transition"


def test_datadog_missing_date_uses_received_at_visibly() -> None:
    (event,) = from_datadog(_datadog(date="", last_updated=""), received_at=RECEIVED)
    assert event.occurred_at == RECEIVED and event.labels["triage.time_defaulted"] is True
    (event,) = from_datadog(_datadog(date="", last_updated="2026-03-11T14:00:30Z"), received_at=RECEIVED)
    assert event.occurred_at == datetime(2026, 3, 11, 14, 0, 30, tzinfo=UTC)


# --------------------------------------------------------------------------- generic

GENERIC = {"kind": "alert", "source": "nagios", "occurred_at": "2026-03-11T14:00:00Z", "severity": "critical",
           "title": "Disk full on db-1", "service": "db", "labels": {"mount": "/var"}}


def test_generic_object_and_list() -> None:
    (one,) = from_generic(dict(GENERIC), received_at=RECEIVED)
    assert one.source == "nagios" and one.severity is Severity.critical and one.id.startswith("evt-")
    two = from_generic([dict(GENERIC), {**GENERIC, "title": "Disk full on db-2"}], received_at=RECEIVED)
    assert [e.title for e in two] == ["Disk full on db-1", "Disk full on db-2"]
    assert two[0].id == one.id  # a retried POST stores once


def test_generic_errors_name_the_item_and_field() -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_generic([dict(GENERIC), {**GENERIC, "severity": "spicy"}], received_at=RECEIVED)
    assert exc.value.field == "[1].severity" and "spicy" in exc.value.reason
    with pytest.raises(InvalidEvent) as exc:
        from_generic({**GENERIC, "severity": "spicy"}, received_at=RECEIVED)
    assert exc.value.field == "severity"
    not_json_container: Any = "nope"
    with pytest.raises(InvalidEvent, match="JSON object or a list"):
        from_generic(not_json_container, received_at=RECEIVED)


# --------------------------------------------------------------------------- what the consumer would refuse

def _alertmanager_with(**alert: Any) -> dict[str, Any]:
    body = copy.deepcopy(ALERTMANAGER)
    body["alerts"][1].update(alert)
    return body


@pytest.mark.parametrize(("alert", "field"), [
    ({"startsAt": "9999-12-31T00:00:00Z", "endsAt": "9999-12-31T00:00:01Z"}, "alerts[1].occurred_at"),
    ({"startsAt": "9999-12-31T23:59:59-01:00"}, "alerts[1].startsAt"),   # was an OverflowError: a 500
    ({"labels": {"alertname": "Disk\x00Full", "severity": "warning"}}, "alerts[1].labels"),
    ({"labels": {"alertname": "A" * 100_000, "severity": "warning"}}, "alerts[1].labels"),
    ({"labels": {"alertname": "Load", "severity": "warning", "load": float("nan")}}, "alerts[1].labels"),
    ({"fingerprint": "f\x00"}, "alerts[1].fingerprint"),
])
def test_a_webhook_refuses_what_the_consumer_would_refuse(alert: dict[str, Any], field: str) -> None:
    # Answered 202 before, then dead-lettered by the consumer without the caller knowing.
    with pytest.raises(InvalidEvent) as exc:
        from_alertmanager(_alertmanager_with(**alert), received_at=RECEIVED)
    assert exc.value.field == field


def test_webhook_translators_apply_the_limits_they_are_given() -> None:
    from triage.domain.event import Limits

    small = Limits(max_labels=3)
    with pytest.raises(InvalidEvent, match="TRIAGE_MAX_LABELS") as exc:
        from_alertmanager(copy.deepcopy(ALERTMANAGER), received_at=RECEIVED, limits=small)
    assert exc.value.field == "alerts[0].labels"
    for translate in (from_grafana, from_datadog, from_generic):
        assert translate.__kwdefaults__ is not None and "limits" in translate.__kwdefaults__
    with pytest.raises(InvalidEvent, match="TRIAGE_MAX_TITLE_LENGTH"):
        from_generic(dict(GENERIC), received_at=RECEIVED, limits=Limits(max_title_length=5))
    with pytest.raises(InvalidEvent, match="TRIAGE_MAX_TITLE_LENGTH"):
        from_datadog(_datadog(), received_at=RECEIVED, limits=Limits(max_title_length=5))


@pytest.mark.parametrize("date", [1e300, "1" * 40, float("nan")])
def test_a_datadog_date_past_the_calendar_is_refused_not_a_crash(date: Any) -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_datadog(_datadog(date=date), received_at=RECEIVED)
    assert exc.value.field == "date"
