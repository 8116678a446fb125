"""The offline replay (``services/offline_replay.py``) that eval and the what-if share:
fed in any number of batches it decides and pages as in one; calls the traces showed
before an event are in its scope's graph when it is decided."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from importlib.resources import files

import pytest

from tests.conftest import T0, make_event
from triage.ingest.decode import event_from_dict
from triage.models.embedder import HashingEmbedder
from triage.models.parameters import CorrelationParameters
from triage.services.offline_replay import KnownEdge, Replay

EMBEDDER = HashingEmbedder()


def storm(limit: int) -> list:  # type: ignore[type-arg]
    lines = gzip.decompress((files("triage") / "data" / "sample_storm.jsonl.gz").read_bytes()).splitlines()
    return sorted((event_from_dict(json.loads(line)) for line in lines[:limit]), key=lambda e: (e.occurred_at, e.id))


@pytest.mark.parametrize("auto_pause", [0.0, 120.0])
def test_batches_decide_and_page_as_one_feed(auto_pause: float) -> None:
    events = storm(1200)
    parameters = CorrelationParameters(auto_pause=auto_pause)
    whole = Replay(parameters, embedder=EMBEDDER)
    expected = [d.incident_id for d in whole.feed(events)]
    whole.finish()
    cut = Replay(parameters, embedder=EMBEDDER)
    got = [d.incident_id for i in range(0, len(events), 37) for d in cut.feed(events[i:i + 37])]
    cut.finish()
    assert got == expected
    assert cut.pages == whole.pages and whole.pages


def test_events_out_of_order_are_refused() -> None:
    replay = Replay(embedder=EMBEDDER)
    replay.feed([make_event(10, id="b")])
    with pytest.raises(ValueError, match="order"):
        replay.feed([make_event(5, id="a")])


def test_a_call_seen_before_an_event_relates_its_services() -> None:
    """An alert on payments 20 s after one on checkout joins it only when the graph
    relates the two services (require_topology): through a call healthy spans showed."""
    events = [make_event(0, id="c1", fingerprint="fc", title="HighErrorRate"),
              make_event(20, id="p1", service="payments", fingerprint="fp", title="HighErrorRate",
                         labels={"alertname": "HighErrorRate", "service": "payments"})]
    alone = Replay(embedder=EMBEDDER)
    assert len({d.incident_id for d in alone.feed(events)}) == 2
    edge = KnownEdge(T0 + timedelta(seconds=5), "checkout", "payments")
    taught = Replay(embedder=EMBEDDER, edges=[edge])
    assert len({d.incident_id for d in taught.feed(events)}) == 1
    late = Replay(embedder=EMBEDDER, edges=[KnownEdge(T0 + timedelta(seconds=30), "checkout", "payments")])
    assert len({d.incident_id for d in late.feed(events)}) == 2   # seen after the event: not yet known
