"""Dedup keys are stored (``signals.key``): the text they hash changes only on purpose
(a signal firing across such a change is seen as a new one, and its old row never
resolves), so these tests pin it."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest

from triage.correlation.identity import _json, dedup_key
from triage.domain.event import Event

TRICKY = ["", "plain", 'quote " and \\ backslash', "tab\tnew\nline\x01", "héllo wörld", "日本語",
          "emoji \U0001f525", "lone \ud800 surrogate", "\x7f\x80\u2028"]


@pytest.mark.parametrize("text", TRICKY)
def test_a_basis_of_strings_is_written_as_json_dumps_writes_it(text: str) -> None:
    for basis in ([text], ["log", None, text, text], [None, None]):
        assert _json(basis) == json.dumps(basis)
    nested = [[("k", text)], text]   # an alert's basis: the general path
    assert _json(nested) == json.dumps(nested)


def test_a_log_records_key_is_the_hash_of_its_json_basis() -> None:
    e = Event(id="e1", kind="log", source="otlp", occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
              severity="error", title="disk \u00e9 full", body="on /var", service=None)
    basis = json.dumps(["log", None, "disk \u00e9 full", "on /var"]).encode()
    assert dedup_key(e) == "log:" + hashlib.blake2b(basis, digest_size=8).hexdigest()


def _alert(title: str, status: str, labels: dict[str, str]) -> Event:
    return Event(id=title, kind="alert", source="generic", occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                 severity="critical", status=status, title=title, labels=labels)


def test_an_alert_without_fingerprint_is_its_label_set_when_that_names_it() -> None:
    # As Alertmanager fingerprints: the title is an annotation, worded by status here, so
    # a resolve must still find its alert.
    labels = {"alertname": "ProbeDown", "instance": "https://shop.example.com/"}
    down, up = _alert("DOWN: probe failed", "firing", labels), _alert("UP: probe ok", "resolved", labels)
    assert dedup_key(down) == dedup_key(up)
    basis = json.dumps([sorted(labels.items()), None, None]).encode()
    assert dedup_key(down) == "alert:" + hashlib.blake2b(basis, digest_size=8).hexdigest()
    # Another instance of the same rule is another alert, whether a label or a field says so.
    assert dedup_key(_alert("DOWN: probe failed", "firing", {**labels, "instance": "other"})) != dedup_key(down)
    assert dedup_key(down.model_copy(update={"host": "db-2"})) != dedup_key(down)
    assert dedup_key(down.model_copy(update={"service": "cart"})) != dedup_key(down)


def test_labels_that_do_not_name_the_alert_keep_the_title_in_its_identity() -> None:
    team = {"team": "payments"}
    assert dedup_key(_alert("disk full on db-1", "firing", team)) != dedup_key(_alert("disk full on db-2", "firing", team))
    assert dedup_key(_alert("disk full on db-1", "firing", {})) != dedup_key(_alert("disk full on db-2", "firing", {}))
