"""No index of ``incidents`` holds a column that an event joining the incident changes:
PostgreSQL can then update the row in place (a HOT update) instead of writing a version
into every index that only a vacuum clears (store/schema.py; migration 0013). The
columns that change are found by running the engine, not listed by hand."""

from __future__ import annotations

import copy

from tests.conftest import make_event
from triage.correlation import Action, Correlator
from triage.models.embedder import HashingEmbedder
from triage.models.parameters import CorrelationParameters
from triage.store import schema as t
from triage.store.rows import incident_row


def test_what_a_joining_event_changes_in_its_incident_is_in_no_index() -> None:
    c = Correlator(CorrelationParameters(), embedder=HashingEmbedder())
    fields = {"kind": "log", "source": "otel", "severity": "error", "service": "checkout", "labels": {}}
    first = c.process(e := make_event(0, title="connection refused to cart", **fields), now=e.occurred_at)
    assert first.incident_id is not None
    before = incident_row(copy.deepcopy(c.state.incidents[first.incident_id]))
    changed: set[str] = set()
    for i, (service, title) in enumerate([("checkout", "connection refused to cart"),   # a duplicate
                                          ("checkout", "connection refused to shipping"),
                                          ("checkout", "connection refused to payment")], start=1):
        joined = c.process(e := make_event(20 * i, title=title, **{**fields, "service": service}), now=e.occurred_at)
        assert joined.action in (Action.suppressed, Action.attached) and joined.incident_id == first.incident_id, joined
        after = incident_row(c.state.incidents[first.incident_id])
        changed |= {name for name in after if after[name] != before[name]}
        before = after
    assert {"last_event_at", "accepting_until", "event_count"} <= changed   # the engine ran as meant
    indexed = {column.name for index in t.incidents.indexes for column in index.columns}
    assert not changed & indexed, f"indexed and changed by every joining event: {sorted(changed & indexed)}"
