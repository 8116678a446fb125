"""Templates from texts masked in another process are the templates masked here."""

from __future__ import annotations

import gzip
from importlib.resources import files

from triage.correlation.templating import Templater, premask
from triage.ingest.decode import decode_event


def _storm() -> list:
    raw = gzip.decompress((files("triage") / "data" / "sample_storm.jsonl.gz").read_bytes())
    return [decode_event(line) for line in raw.splitlines()]


def test_premasked_batches_learn_and_answer_as_masking_in_place() -> None:
    events = _storm()
    assert {e.kind.value for e in events} == {"alert", "log", "span"}
    here, there = Templater(), Templater()
    for first in range(0, len(events), 200):
        batch = events[first:first + 200]
        there.premasked = {e.id: premask(e) for e in batch}
        for event in batch:
            assert there.template_of(event) == here.template_of(event), event.id
        there.premasked = {}
    assert there.snapshot() == here.snapshot() and there.version == here.version


def test_an_empty_masked_line_is_no_tokens() -> None:
    here, there = Templater(), Templater()
    event = decode_event(b'{"id": "e", "kind": "log", "source": "s", "occurred_at": "2026-01-01T00:00:00Z",'
                         b' "severity": "info", "title": " "}')
    there.premasked = {"e": premask(event)}
    assert there.template_of(event) == here.template_of(event)
