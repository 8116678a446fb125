"""A Decision's evidence as one sentence an on-call engineer can read.

``explain(rule, evidence)`` works on the evidence alone, as stored in the membership row
and read back (``evidence_from_json``), so that any decision, old or new, can be
explained without the engine. For a join:

    joined because: checkoutservice→paymentservice 1 hop, 40 s after the incident's last
    event, same template family 0.93 (score 0.78 ≥ 0.55, parameters v3)
"""

from __future__ import annotations

from triage.correlation.holds import Change, Hold, HoldKind, Release
from triage.correlation.evidence import (
    BaselineJoined, BaselineOpened, Blocked, Candidate, Correction, Criteria, Duplicate, EpisodeEnd, Evidence,
    GapFrom, Joined, Merged, Opened, Placement, Resolve, Rule, TextMatch, Unrecognized,
)

__all__ = ["explain"]


def _scope(scope: str) -> str:
    kind, _, name = scope.partition(":")
    return f"same {kind} {name}" if name else "no service or host (global scope)"


def _node(name: str | None) -> str:
    text = name or ""
    return text.removeprefix("host:") if text.startswith("host:") else text


def _topology(service: str, match: Candidate) -> str:
    if service in ("", "global"):
        return "no service or host"
    kind = "host" if service.startswith("host:") else "service"
    hops = match.hops
    if hops == 0:
        return f"same {kind} {_node(service)}"
    if hops is not None:
        return f"{_node(service)}→{_node(match.via)} {hops} hop{'s' if hops != 1 else ''}"
    return f"{_node(service)}, no known relation"


def _gap(service: str, match: Candidate) -> str:
    gap = match.gap_s
    if match.gap_from is GapFrom.before_open:
        return f"{gap:.0f} s before the incident opened"
    if match.gap_from is GapFrom.template:
        return f"{gap:.0f} s after it last showed this template there"
    if match.gap_from is GapFrom.service:
        return f"{gap:.0f} s after its last event on {_node(service)}"
    return f"{gap:.0f} s after the incident's last event"


def _text(match: Candidate) -> str:
    if match.text_match is TextMatch.same_template:
        return "same template"
    if match.text_match is TextMatch.same_family:
        return f"same template family {match.components.text:.2f}"
    return f"template similarity {match.components.text:.2f}"


def _score(score: float, criteria: Criteria) -> str:
    version = criteria.parameters_version
    tail = f", parameters v{version}" if version is not None else ""
    return f"score {score:.2f} ≥ {criteria.threshold:.2f}{tail}"


def _onset(match: Candidate, joined: Joined) -> str:
    """A join below the threshold, at the incident's onset (``onset_window``)."""
    assert joined.onset is not None
    c, onset = joined.criteria, joined.onset
    tail = f", parameters v{c.parameters_version}" if c.parameters_version is not None else ""
    return (f"score {match.score:.2f} ≥ {onset.threshold:.2f}, {c.threshold:.2f} less the onset margin, at the "
            f"incident's onset: {match.incident_age_s:.0f} s old (onset window {onset.window_s:.0f} s), "
            f"{match.hops} hop(s) away{tail}")


def _family(match: Candidate) -> str:
    """The fitted alert family the event shares with the incident (``GET /families/{id}``)."""
    return f", same alert family {match.family}" if match.family_match else ""


def _labels(joined: Joined) -> str:
    shared = joined.match.components.labels and joined.criteria.weights.labels
    return ", shares a pod/node/instance" if shared else ""


def explain(rule: Rule | str, evidence: Evidence) -> str:
    if isinstance(evidence, Duplicate):
        return (f"duplicate ({evidence.reason}): seen {evidence.seen_before}x "
                f"before, last {evidence.since_last_s:.0f} s earlier")
    if isinstance(evidence, Resolve):
        if evidence.incident_resolved:
            tail = "; incident resolved" + (" before its page was due (transient: nobody paged)"
                                            if evidence.transient else "")
        else:
            tail = f"; {evidence.still_firing} alert(s) still firing"
        return "resolves an alert of this incident" + tail
    if isinstance(evidence, Joined):
        match = evidence.match
        parts = [_topology(evidence.service, match), _gap(evidence.service, match), _text(match)]
        score = _score(match.score, evidence.criteria) if evidence.onset is None else _onset(match, evidence)
        sentence = "joined because: " + ", ".join(parts) + _family(match) + _labels(evidence) + f" ({score})"
        if evidence.promoted:
            sentence += "; its first alert turns this noise group into an incident"
        if evidence.reopened:
            sentence += "; the alert fired again, the incident reopens"
        return sentence + _previous_episode(evidence) + _hold(evidence.hold) + _release(evidence.release)
    if isinstance(evidence, Opened):
        return _opened(rule, evidence) + _previous_episode(evidence) + _hold(evidence.hold)
    if isinstance(evidence, BaselineOpened):
        return (f"{_what(rule)}: {_scope(evidence.scope)} had an incident, but its last event was "
                f"{evidence.gap_s:.0f} s ago (window {evidence.window_s:.0f} s) "
                "or it was past its maximum age")
    if isinstance(evidence, Correction):   # a responder's merge or split (POST /incidents/{id}/merge, /split)
        original = evidence.original
        before = explain(original.rule, original.evidence) if original is not None else ""
        by = evidence.by if evidence.by is not None else "a responder"
        how = "merged" if isinstance(evidence, Merged) else "split"
        return (f"{how} by {by} from {evidence.source}" + (f": {evidence.reason}" if evidence.reason else "")
                + (f" (before: {before})" if before else ""))
    if isinstance(evidence, BaselineJoined):   # the baseline's rule, in stored decisions
        return (f"joined because: {_scope(evidence.scope)}, {evidence.gap_s:.0f} s after the incident's "
                f"last event (window {evidence.window_s:.0f} s)")
    assert isinstance(evidence, Unrecognized)
    return str(rule)


def _what(rule: Rule | str) -> str:
    return "opened" if rule == Rule.new_incident else "opened a noise group (pages nobody)"


def _opened(rule: Rule | str, evidence: Opened) -> str:
    best = evidence.best_candidate
    if best is None:
        return f"{_what(rule)}: no open incident accepts this event"
    if best.blocked is Blocked.settled:
        why = (f"the nearest incident {best.incident} is past its propagation window and "
               "has not shown this service and template")
    elif best.blocked is Blocked.no_topology:
        why = f"the nearest incident {best.incident} is on services with no known relation"
    elif best.blocked is Blocked.downstream:
        why = (f"the best candidate {best.incident} scored {best.score:.2f} < {evidence.criteria.threshold:.2f}, "
               f"and at its onset it takes no log or span of a service its own services only call "
               f"(a fault spreads from a callee to its callers)")
    else:
        why = f"the best candidate {best.incident} scored {best.score:.2f} < {evidence.criteria.threshold:.2f}"
    return f"{_what(rule)}: {why}"


def _previous_episode(evidence: Placement) -> str:
    previous = evidence.previous_episode
    if previous is None:
        return ""
    why = ("it started after that episode was last heard of" if previous.ended is EpisodeEnd.started_later
           else "that episode had been silent past resolve_timeout")
    return f"; a new episode of an alert of {previous.incident}: {why}"


def _when(hold: Hold) -> str:
    return hold.last_episode_at.strftime("%Y-%m-%d %H:%M") if hold.last_episode_at is not None else "before"


def _hold(hold: Hold | None) -> str:
    """Why the first page waits (``correlation/holds.py``)."""
    if hold is None:
        return ""
    if hold.kind is HoldKind.auto_pause:
        until = hold.until.strftime("%H:%M:%S") if hold.until is not None else "its pause ends"
        return f"; first page held until {until} (auto-pause: nobody is paged if its alerts resolve before)"
    what = "flapping" if hold.kind is HoldKind.flapping else "chronic"
    expires = f" or if it still fires at {hold.until:%Y-%m-%d %H:%M:%S}" if hold.until is not None else ""
    return (f"; page damped, {what}: {hold.title!r} on {_node(hold.family.partition('|')[0] if hold.family else '')} "
            f"opened {hold.episodes} incident(s) before, {hold.sustained} outlasting their pause "
            f"({hold.alone} alone, the longest {hold.longest_s:.0f} s, at most {hold.most_alerts} alert events), "
            f"the last at {_when(hold)}; it pages when a more severe alert, another service or another template "
            f"joins, when more alert events come than in a lone episode{expires} (the longest plus its pause)")


def _release(release: Release | None) -> str:
    if release is None:
        return ""
    what = {Change.severity: f"severity {release.detail}", Change.service: f"service {release.detail}",
            Change.event: release.detail,
            Change.alerts: f"{release.detail} alert events, more than any lone episode of its family"}[release.change]
    return f"; the damped incident changed ({what}): its page is due"
