"""A Decision's evidence as one sentence an on-call engineer can read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _scope(evidence: Mapping[str, Any]) -> str:
    scope = str(evidence.get("scope", ""))
    kind, _, name = scope.partition(":")
    return f"same {kind} {name}" if name else "no service or host (global scope)"


def explain(rule: str, evidence: Mapping[str, Any]) -> str:
    if rule == "duplicate":
        return (f"duplicate ({evidence.get('reason', 'same signal')}): seen {evidence.get('seen_before', 1)}x "
                f"before, last {evidence.get('since_last_s', 0):.0f} s earlier")
    if rule == "alert_resolved":
        tail = "; incident resolved" if evidence.get("incident_resolved") else \
            f"; {evidence.get('still_firing', 0)} alert(s) still firing"
        return "resolves an alert of this incident" + tail
    if rule == "same_scope_within_window":
        return (f"joined because: {_scope(evidence)}, {evidence.get('gap_s', 0):.0f} s after the incident's "
                f"last event (window {evidence.get('window_s', 0):.0f} s)")
    if rule == "new_incident":
        if "previous_incident" in evidence:
            return (f"opened: {_scope(evidence)} had an incident, but its last event was "
                    f"{evidence.get('gap_s', 0):.0f} s ago (window {evidence.get('window_s', 0):.0f} s) "
                    "or it was past its maximum age")
        return f"opened: nothing open for {_scope(evidence).removeprefix('same ')}"
    return rule
