"""Dedup keys are stored (``signals.key``): the text they hash must never change."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest

from triage.correlation.keys import _json, dedup_key
from triage.ingest.event import Event

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
