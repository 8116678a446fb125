from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from triage.ingest.decode import decode_event, event_from_dict
from triage.domain.errors import InvalidEvent, NotJSON, TooLarge
from triage.domain.event import AS_STORED, Event, Limits, Severity, normalize_severity
from triage.ingest.otlp import decode_kafka_value

BASE = {"id": "x1", "kind": "alert", "source": "grafana", "occurred_at": "2026-03-11T14:00:00.123Z",
        "severity": "critical", "title": "CPU high"}


@pytest.mark.parametrize("raw,expected", [
    ("CRITICAL", Severity.critical), ("P1", Severity.critical), ("fatal", Severity.critical),
    ("err", Severity.error), ("high", Severity.error), ("Warning", Severity.warning),
    ("warn", Severity.warning), ("info", Severity.info), ("low", Severity.info),
    ("debug", Severity.debug), (21, Severity.critical), (17, Severity.error), (13, Severity.warning),
    (9, Severity.info), (5, Severity.debug),
])
def test_severity_synonyms_map_onto_one_scale(raw: str | int, expected: Severity) -> None:
    assert normalize_severity(raw) is expected


def test_unknown_severity_is_an_error_naming_the_value() -> None:
    with pytest.raises(InvalidEvent) as exc:
        event_from_dict({**BASE, "severity": "spicy"})
    assert exc.value.field == "severity"
    assert "unknown severity 'spicy'" in exc.value.reason


def test_raw_severity_is_kept() -> None:
    e = event_from_dict({**BASE, "severity": "P2"})
    assert e.severity is Severity.error and e.severity_raw == "P2"


def test_timestamps_are_aware_and_utc() -> None:
    e = event_from_dict({**BASE, "occurred_at": "2026-03-11T15:00:00+01:00"})
    assert e.occurred_at == datetime(2026, 3, 11, 14, 0, tzinfo=timezone.utc)
    assert e.occurred_at.utcoffset() is not None
    with pytest.raises(InvalidEvent) as exc:
        event_from_dict({**BASE, "occurred_at": "2026-03-11T15:00:00"})
    assert exc.value.field == "occurred_at"


def test_truth_fields_never_reach_the_event() -> None:
    e = event_from_dict({**BASE, "truth_incident": "INC-1", "truth_root_cause": {"kind": "x"}})
    assert "truth_incident" not in e.model_dump()


def test_missing_id_is_derived_from_content_so_redelivery_is_idempotent() -> None:
    data = {k: v for k, v in BASE.items() if k != "id"}
    assert event_from_dict(dict(data)).id == event_from_dict(dict(data)).id
    assert event_from_dict(dict(data)).id != event_from_dict({**data, "title": "other"}).id


def test_decode_rejects_non_json_and_non_objects() -> None:
    with pytest.raises(NotJSON):
        decode_event(b"\xff\xfe not json")
    with pytest.raises(NotJSON):
        decode_event(None)
    with pytest.raises(InvalidEvent, match="expected a JSON object"):
        decode_event(b"[1, 2]")


def test_decode_ignores_a_byte_order_mark() -> None:
    line = b"\xef\xbb\xbf" + json.dumps({**BASE, "id": "bom-1"}).encode()
    assert decode_event(line).id == "bom-1"
    assert decode_kafka_value("alerts", line)[0][0].id == "bom-1"


def test_missing_required_field_is_named() -> None:
    with pytest.raises(InvalidEvent) as exc:
        event_from_dict({k: v for k, v in BASE.items() if k != "title"})
    assert exc.value.field == "title"


@pytest.mark.parametrize(("field", "value"), [
    ("fingerprint", "f" * 301), ("service", "s" * 201), ("parent_service", "p" * 201), ("host", "h" * 254),
    ("labels", {"triage.domain": "d" * 101}),
])
def test_a_field_longer_than_the_store_keeps_is_refused_by_name(field: str, value: object) -> None:
    # PostgreSQL would refuse such an event's batch on every retry, stalling its partition.
    with pytest.raises(InvalidEvent) as exc:
        event_from_dict({**BASE, field: value})
    assert exc.value.field == field


def test_shared_data_shape_validates() -> None:
    line = (b'{"id": "bsevt-1", "kind": "span", "source": "otel", "occurred_at": "2026-03-11T00:03:13.379Z",'
            b' "service": "emailservice", "host": "h1", "severity": "error", "status": "firing",'
            b' "title": "SendOrderConfirmation", "body": "failed", "labels": {"duration_ms": 893.7},'
            b' "fingerprint": null, "trace_id": "2f1d", "span_id": "8e34", "parent_service": "checkoutservice",'
            b' "truth_incident": "noise-251"}')
    e = decode_event(line)
    assert e.kind.value == "span" and e.parent_service == "checkoutservice" and e.labels["duration_ms"] == 893.7


def test_event_is_immutable() -> None:
    e = Event.model_validate(BASE)
    with pytest.raises(ValidationError):
        e.title = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["service", "host", "fingerprint", "trace_id", "span_id", "parent_service"])
def test_a_blank_name_or_id_is_none(name: str) -> None:
    assert getattr(event_from_dict({**BASE, name: ""}), name) is None
    assert getattr(Event.model_validate({**BASE, name: b""}), name) is None   # lax str takes bytes
    assert getattr(event_from_dict({**BASE, name: "x"}), name) == "x"


def test_service_and_host_not_given_are_taken_from_the_labels_that_always_name_them() -> None:
    labels = {"alertname": "NodeDiskFull", "service": "cart", "hostname": "web-1", "node": "gke-node-7"}
    e = event_from_dict({**BASE, "labels": labels})
    assert (e.service, e.host) == ("cart", "gke-node-7")     # node before hostname
    assert event_from_dict({**BASE, "host": "", "labels": {"host": "db-2"}}).host == "db-2"
    # What the event says itself wins; labels that are only sometimes a host are not taken;
    # a value the store could not keep is left out rather than refusing the event.
    given = event_from_dict({**BASE, "service": "checkout", "host": "n1", "labels": labels})
    assert (given.service, given.host) == ("checkout", "n1")
    assert event_from_dict({**BASE, "labels": {"instance": "10.0.0.1:9100", "job": "node"}}).host is None
    assert event_from_dict({**BASE, "labels": {"node": "n" * 254, "service": ""}}).host is None


def test_nul_in_title_and_body_is_shown_as_replacement_character() -> None:
    e = event_from_dict({**BASE, "title": "bad\x00byte", "body": "\x00"})
    assert (e.title, e.body) == ("bad\ufffdbyte", "\ufffd")
    # the same through the constructor, which webhooks and OTLP decoding use
    assert Event(**{**BASE, "title": "a\x00"}).title == "a\ufffd"  # type: ignore[arg-type]
    assert Event.model_validate({**BASE, "body": b"b\x00"}).body == "b\ufffd"   # lax str takes bytes


def test_a_title_of_the_wrong_type_is_refused_naming_it() -> None:
    with pytest.raises(InvalidEvent) as exc:
        event_from_dict({**BASE, "title": 12})
    assert exc.value.field == "title"


def test_the_domain_is_the_events_own_label_else_the_first_named_label_it_carries() -> None:
    from triage.domain.event import domain_named, with_domain
    own = event_from_dict({**BASE, "labels": {"triage.domain": "shop", "cluster": "eu"}})
    assert with_domain(own, ["cluster"]) is own
    e = event_from_dict({**BASE, "labels": {"cluster": "", "region": "eu-1", "zone": "a"}})
    assert with_domain(e, ["cluster", "region", "zone"]).labels["triage.domain"] == "eu-1"   # blank skipped
    assert with_domain(e, []) is e and with_domain(e, ["dc"]) is e
    assert domain_named({"dc": 7}, ["dc"]) == "7" and domain_named("not labels", ["dc"]) is None
    with pytest.raises(InvalidEvent, match="correlation domain") as exc:
        with_domain(event_from_dict({**BASE, "labels": {"region": "r" * 101}}), ["region"])
    assert exc.value.field == "labels"


# -- values the engine cannot do arithmetic on, or the store cannot hold ----------------

@pytest.mark.parametrize(("field", "value"), [
    ("occurred_at", "9999-12-31T00:00:00Z"),        # + max_incident_age overflowed in the correlator
    ("occurred_at", "2200-01-01T00:00:00Z"),
    ("occurred_at", "1969-12-31T23:59:59Z"),
    ("occurred_at", "0001-01-01T00:00:00+01:00"),   # past the calendar's start once in UTC
    ("occurred_at", "9999-12-31T23:59:59-01:00"),   # past its end
    ("starts_at", "9999-12-31T00:00:00Z"),
    ("ends_at", "2300-01-01T00:00:00Z"),
])
def test_a_time_outside_the_accepted_years_is_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        event_from_dict({**BASE, field: value})
    assert exc.value.field == field


def test_the_accepted_years_are_1970_to_2199() -> None:
    assert event_from_dict({**BASE, "occurred_at": "1970-01-01T00:00:00Z"}).occurred_at.year == 1970
    assert event_from_dict({**BASE, "occurred_at": "2199-12-31T23:59:59Z"}).occurred_at.year == 2199


@pytest.mark.parametrize("field", ["id", "source", "service", "host", "fingerprint", "trace_id", "span_id",
                                   "parent_service"])
def test_a_nul_in_a_name_is_refused_naming_the_field(field: str) -> None:
    # PostgreSQL's text cannot hold NUL, and refused the whole batch for one.
    with pytest.raises(InvalidEvent, match="NUL") as exc:
        event_from_dict({**BASE, field: "a\x00b"})
    assert exc.value.field == field


@pytest.mark.parametrize("labels", [{"alert\x00name": "x"}, {"alertname": "Disk\x00Full"},
                                    {"v": float("nan")}, {"v": float("inf")}, {"v": float("-inf")}])
def test_a_label_the_store_cannot_hold_is_refused(labels: dict[str, object]) -> None:
    with pytest.raises(InvalidEvent) as exc:
        event_from_dict({**BASE, "labels": labels})
    assert exc.value.field == "labels"


def test_non_finite_numbers_are_refused_anywhere_in_the_raw_payload() -> None:
    with pytest.raises(InvalidEvent, match=r"raw\.values\.1\.v is not a finite number") as exc:
        decode_event(b'{"id": "r", "kind": "alert", "source": "s", "occurred_at": "2026-03-11T14:00:00Z",'
                     b' "severity": "info", "title": "t", "raw": {"values": [1, {"v": NaN}]}}')
    assert exc.value.field == "raw"
    assert event_from_dict({**BASE, "raw": {"values": [1, {"v": 2.5}]}}).raw == {"values": [1, {"v": 2.5}]}


SMALL = Limits(max_message_bytes=2048, max_labels=3, max_label_key_length=10, max_label_value_length=20,
               max_title_length=30, max_body_length=40)


@pytest.mark.parametrize(("fields", "field", "named"), [
    ({"labels": {"a": 1, "b": 2, "c": 3, "d": 4}}, "labels", "TRIAGE_MAX_LABELS"),
    ({"labels": {"k" * 11: 1}}, "labels", "TRIAGE_MAX_LABEL_KEY_LENGTH"),
    ({"labels": {"alertname": "A" * 21}}, "labels", "TRIAGE_MAX_LABEL_VALUE_LENGTH"),
    ({"title": "t" * 31}, "title", "TRIAGE_MAX_TITLE_LENGTH"),
    ({"body": "b" * 41}, "body", "TRIAGE_MAX_EVENT_BODY_LENGTH"),
])
def test_past_a_limit_the_event_is_refused_with_the_limit_named(fields: dict[str, object], field: str,
                                                                 named: str) -> None:
    event_from_dict({**BASE, **fields})   # within the defaults
    with pytest.raises(InvalidEvent, match=named) as exc:
        event_from_dict({**BASE, **fields}, limits=SMALL)
    assert exc.value.field == field


def test_the_default_limits_refuse_what_the_issue_names() -> None:
    for fields in ({"labels": {f"l{i}": "v" for i in range(10_000)}}, {"labels": {"big": "v" * 500_000}},
                   {"labels": {"alertname": "A" * 100_000}}, {"body": "b" * 5_000_000}):
        with pytest.raises(InvalidEvent):
            event_from_dict({**BASE, **fields})


def test_a_message_past_the_size_limit_is_refused_before_it_is_parsed() -> None:
    message = json.dumps({**BASE, "body": "b" * 3000}).encode()
    with pytest.raises(TooLarge, match="TRIAGE_MAX_BODY_BYTES"):
        decode_event(message, SMALL)
    with pytest.raises(TooLarge):
        decode_kafka_value("logs", message, SMALL)
    with pytest.raises(TooLarge):
        decode_event(b"{" * 5_000_000)   # 5 MB: past the default, and never parsed
    assert decode_event(message).body == "b" * 3000


def test_an_event_read_back_from_the_store_is_not_held_to_todays_bounds() -> None:
    stored = {**BASE, "occurred_at": "2300-01-01T00:00:00Z", "labels": {"v": float("nan")}, "title": "t" * 20_000}
    assert Event.model_validate(stored, context=AS_STORED).title == "t" * 20_000
    with pytest.raises(ValidationError):
        Event.model_validate(stored)


def test_the_bundled_storm_is_within_the_default_limits() -> None:
    import gzip
    from importlib.resources import files

    with gzip.open(str(files("triage") / "data" / "sample_storm.jsonl.gz"), "rb") as f:
        assert sum(1 for line in f if decode_event(line)) == 3170
