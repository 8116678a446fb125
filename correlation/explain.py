"""A Decision's evidence as one sentence an on-call engineer can read.

``explain(rule, evidence)`` works on the stored evidence alone (the membership row), so
that any decision, old or new, can be explained without the engine. For a join:

    joined because: checkoutservice→paymentservice 1 hop, 40 s after the incident's last
    event, same template family 0.93 (score 0.78 ≥ 0.55, parameters v3)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _scope(evidence: Mapping[str, Any]) -> str:
    scope = str(evidence.get("scope", ""))
    kind, _, name = scope.partition(":")
    return f"same {kind} {name}" if name else "no service or host (global scope)"


def _node(name: Any) -> str:
    text = str(name or "")
    return text.removeprefix("host:") if text.startswith("host:") else text


def _topology(evidence: Mapping[str, Any]) -> str:
    service = evidence.get("service")
    hops = evidence.get("hops")
    if service in (None, "", "global"):
        return "no service or host"
    kind = "host" if str(service).startswith("host:") else "service"
    if hops == 0:
        return f"same {kind} {_node(service)}"
    if hops is not None:
        via = _node(evidence.get("via"))
        return f"{_node(service)}→{via} {hops} hop{'s' if hops != 1 else ''}"
    return f"{_node(service)}, no known relation"


def _gap(evidence: Mapping[str, Any]) -> str:
    gap = float(evidence.get("gap_s", 0) or 0)
    source = evidence.get("gap_from")
    if source == "before_open":
        return f"{gap:.0f} s before the incident opened"
    if source == "template":
        return f"{gap:.0f} s after it last showed this template there"
    if source == "service":
        return f"{gap:.0f} s after its last event on {_node(evidence.get('service'))}"
    return f"{gap:.0f} s after the incident's last event"


def _text(evidence: Mapping[str, Any]) -> str:
    components = evidence.get("components") or {}
    value = float(components.get("text", 0) or 0)
    match = evidence.get("text_match")
    if match == "same_template":
        return "same template"
    if match == "same_family":
        return f"same template family {value:.2f}"
    return f"template similarity {value:.2f}"


def _score(evidence: Mapping[str, Any]) -> str:
    version = evidence.get("parameters_version")
    tail = f", parameters v{version}" if version is not None else ""
    return f"score {float(evidence.get('score', 0)):.2f} ≥ {float(evidence.get('threshold', 0)):.2f}{tail}"


def _family(evidence: Mapping[str, Any]) -> str:
    """The fitted alert family the event shares with the incident (``GET /families/{id}``)."""
    return f", same alert family {evidence.get('family')}" if evidence.get("family_match") else ""


def _labels(evidence: Mapping[str, Any]) -> str:
    components = evidence.get("components") or {}
    weights = evidence.get("weights") or {}
    return ", shares a pod/node/instance" if components.get("labels") and weights.get("labels") else ""


def explain(rule: str, evidence: Mapping[str, Any]) -> str:
    if rule == "duplicate":
        return (f"duplicate ({evidence.get('reason', 'same signal')}): seen {evidence.get('seen_before', 1)}x "
                f"before, last {evidence.get('since_last_s', 0):.0f} s earlier")
    if rule == "alert_resolved":
        if evidence.get("incident_resolved"):
            tail = "; incident resolved" + (" before its page was due (transient: nobody paged)"
                                            if evidence.get("transient") else "")
        else:
            tail = f"; {evidence.get('still_firing', 0)} alert(s) still firing"
        return "resolves an alert of this incident" + tail
    if rule == "correlated":
        parts = [_topology(evidence), _gap(evidence), _text(evidence)]
        sentence = ("joined because: " + ", ".join(parts) + _family(evidence) + _labels(evidence)
                    + f" ({_score(evidence)})")
        if evidence.get("promoted"):
            sentence += "; its first alert turns this noise group into an incident"
        if evidence.get("reopened"):
            sentence += "; the alert fired again, the incident reopens"
        return sentence + _previous_episode(evidence)
    if rule in ("new_incident", "noise_group"):
        return _opened(rule, evidence) + _previous_episode(evidence)
    if rule in ("merged", "split"):   # a responder's merge or split (POST /incidents/{id}/merge, /split)
        original = evidence.get("original") or {}
        before = explain(str(original.get("rule", "")), original.get("evidence") or {}) if original else ""
        how = (f"merged by {evidence.get('merged_by', 'a responder')} from {evidence.get('merged_from')}"
               if rule == "merged" else
               f"split by {evidence.get('split_by', 'a responder')} from {evidence.get('split_from')}")
        return (how + (f": {evidence['reason']}" if evidence.get("reason") else "")
                + (f" (before: {before})" if before else ""))
    if rule == "same_scope_within_window":  # the baseline's rule, in stored decisions
        return (f"joined because: {_scope(evidence)}, {evidence.get('gap_s', 0):.0f} s after the incident's "
                f"last event (window {evidence.get('window_s', 0):.0f} s)")
    return rule


def _opened(rule: str, evidence: Mapping[str, Any]) -> str:
    what = "opened" if rule == "new_incident" else "opened a noise group (pages nobody)"
    best = evidence.get("best_candidate")
    if isinstance(best, Mapping):
        if best.get("blocked") == "settled":
            why = (f"the nearest incident {best.get('incident')} is past its propagation window and "
                   "has not shown this service and template")
        elif best.get("blocked") == "no_topology":
            why = f"the nearest incident {best.get('incident')} is on services with no known relation"
        else:
            why = (f"the best candidate {best.get('incident')} scored {float(best.get('score', 0)):.2f} "
                   f"< {float(evidence.get('threshold', 0)):.2f}")
        return f"{what}: {why}"
    if "previous_incident" in evidence:  # baseline decisions, still in the store
        return (f"{what}: {_scope(evidence)} had an incident, but its last event was "
                f"{evidence.get('gap_s', 0):.0f} s ago (window {evidence.get('window_s', 0):.0f} s) "
                "or it was past its maximum age")
    return f"{what}: no open incident accepts this event"


def _previous_episode(evidence: Mapping[str, Any]) -> str:
    previous = evidence.get("previous_episode")
    if not isinstance(previous, Mapping):
        return ""
    why = ("it started after that episode was last heard of" if previous.get("ended") == "started_later"
           else "that episode had been silent past resolve_timeout")
    return f"; a new episode of an alert of {previous.get('incident')}: {why}"
