"""A stored decision's evidence read back into its types: ``evidence_from_json(rule, document)``.

The store calls it for every membership row it reads (the API's events, a page's
reasons, the decision a merge or split replaces). Rows of every age come back: the
baseline correlator's (``same_scope_within_window``, and its ``new_incident`` naming a
``previous_incident``), decisions from before templates or alert families were recorded,
and a rule this version does not know (``Unrecognized``). Reading is tolerant: a key
missing, or of another type than this version writes, reads as the value ``explain`` has
always assumed for it, so every stored decision explains as it did. The document read is
kept on the evidence (``read_from``), which writes it back as it is (``as_json``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar, overload

from triage.correlation.holds import Hold, Release
from triage.correlation.evidence import (
    BaselineJoined, BaselineOpened, Blocked, Candidate, Components, Correction, Criteria, Duplicate, EpisodeEnd,
    Evidence, GapFrom, Joined, Merged, Onset, Opened, Original, PreviousEpisode, Resolve, Rule, Split, TextMatch,
    Unrecognized, Weights, rule_of,
)

__all__ = ["evidence_from_json"]


def evidence_from_json(rule: str, document: Any) -> Evidence:
    """The evidence of a stored decision (the membership row's ``rule`` and ``evidence``)."""
    data: dict[str, Any] = document if isinstance(document, dict) else {}
    evidence: Evidence
    match rule_of(rule):
        case Rule.duplicate:
            evidence = _duplicate(data)
        case Rule.alert_resolved:
            evidence = _resolve(data)
        case Rule.correlated:
            evidence = Joined(**_placement(data), match=_candidate(data), promoted=bool(data.get("promoted")),
                              reopened=bool(data.get("reopened")), hold=Hold.from_json(data.get("hold")),
                              release=Release.from_json(data.get("released")), onset=_onset(data.get("onset")))
        case Rule.new_incident | Rule.noise_group:
            best = data.get("best_candidate")
            if "previous_incident" in data and not isinstance(best, dict):
                evidence = _baseline_opened(data)
            else:
                evidence = Opened(**_placement(data), best_candidate=_candidate(best) if isinstance(best, dict) else None,
                                  hold=Hold.from_json(data.get("hold")))
        case Rule.merged:
            evidence = Merged(**_correction(Merged, data))
        case Rule.split_off:
            evidence = Split(**_correction(Split, data))
        case Rule.same_scope_within_window:
            evidence = _baseline_joined(data)
        case _:
            evidence = Unrecognized(rule=rule)
    if isinstance(document, dict):
        object.__setattr__(evidence, "read_from", document)   # frozen: set once, as it is read
    return evidence


def _duplicate(data: dict[str, Any]) -> Duplicate:
    return Duplicate(dedup_key=str(data.get("dedup_key", "")), template=_str_or_none(data, "template"),
                     reason=str(data.get("reason", "same signal")), first_seen=_datetime(data.get("first_seen")),
                     seen_before=_int(data, "seen_before", 1), since_last_s=_float(data, "since_last_s", 0.0))


def _resolve(data: dict[str, Any]) -> Resolve:
    return Resolve(dedup_key=str(data.get("dedup_key", "")), template=_str_or_none(data, "template"),
                   still_firing=_int(data, "still_firing", 0), incident_resolved=bool(data.get("incident_resolved")),
                   transient=bool(data.get("transient")))


def _placement(data: dict[str, Any]) -> dict[str, Any]:
    """``Placement``'s fields, as keyword arguments of ``Joined`` or ``Opened``."""
    version = data.get("parameters_version")
    return {
        "scope": str(data.get("scope", "")), "service": str(data.get("service") or ""),
        "template": str(data.get("template", "")),
        "criteria": Criteria(threshold=_float(data, "threshold", 0.0), weights=_weights(data.get("weights")),
                             parameters_version=version if isinstance(version, int) else None,
                             window_s=_float(data, "window_s", 0.0)),
        "candidates": _int(data, "candidates", 0),
        "previous_episode": _previous_episode(data.get("previous_episode")),
    }


def _weights(value: Any) -> Weights:
    data = _mapping(value)
    return Weights(*(_float(data, k, 0.0) for k in ("text", "topology", "time", "labels", "family")))


def _previous_episode(value: Any) -> PreviousEpisode | None:
    if not isinstance(value, dict):
        return None
    # (str() of a missing incident is "None": what the sentence has always said then)
    return PreviousEpisode(incident=str(value.get("incident")),
                           ended=EpisodeEnd.started_later if value.get("ended") == "started_later"
                           else EpisodeEnd.resolve_timeout)


def _candidate(value: Any) -> Candidate:
    data = _mapping(value)
    hops, via, family = data.get("hops"), data.get("via"), data.get("family")
    components = _mapping(data.get("components"))
    return Candidate(
        incident=str(data.get("incident")), score=_float(data, "score", 0.0),
        components=Components(text=_float(components, "text", 0.0), time=_float(components, "time", 0.0),
                              labels=_float(components, "labels", 0.0),
                              topology=_float_or_none(components, "topology"),
                              family=_float_or_none(components, "family")),
        text_match=_enum(TextMatch, data.get("text_match"), TextMatch.similar),
        gap_s=_float(data, "gap_s", 0.0), gap_from=_enum(GapFrom, data.get("gap_from"), GapFrom.incident),
        incident_age_s=_float(data, "incident_age_s", 0.0), nearest_template=_str_or_none(data, "nearest_template"),
        hops=hops if isinstance(hops, int) and not isinstance(hops, bool) else None,
        via=None if via is None else str(via),
        blocked=_enum(Blocked, data.get("blocked"), None),
        family=family if isinstance(family, int) and not isinstance(family, bool) else None,
        family_match=bool(data.get("family_match")))


def _correction(kind: type[Correction], data: dict[str, Any]) -> dict[str, Any]:
    """``Merged``'s or ``Split``'s fields, from their keys (``merged_from``, ``split_by``…)."""
    p = kind.PREFIX
    return {"source": _str_or_none(data, f"{p}_from"), "by": _str_or_none(data, f"{p}_by"),
            "reason": str(data.get("reason") or ""), "at": _datetime(data.get(f"{p}_at")),
            "original": _original(data.get("original"))}


def _original(value: Any) -> Original | None:
    if not isinstance(value, dict) or not value:
        return None
    rule = str(value.get("rule", ""))
    return Original(rule=rule_of(rule), evidence=evidence_from_json(rule, value.get("evidence") or {}))


def _baseline_joined(data: dict[str, Any]) -> BaselineJoined:
    return BaselineJoined(scope=str(data.get("scope", "")), gap_s=_float(data, "gap_s", 0.0),
                          window_s=_float(data, "window_s", 0.0),
                          incident_age_s=_float_or_none(data, "incident_age_s"),
                          max_incident_age_s=_float_or_none(data, "max_incident_age_s"))


def _baseline_opened(data: dict[str, Any]) -> BaselineOpened:
    return BaselineOpened(scope=str(data.get("scope", "")), previous_incident=str(data.get("previous_incident")),
                          gap_s=_float(data, "gap_s", 0.0), window_s=_float(data, "window_s", 0.0))


# -- values, tolerantly ------------------------------------------------------------------------

_E = TypeVar("_E", bound=StrEnum)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _onset(data: Any) -> Onset | None:
    """Tolerant: None for anything that is not an onset this version wrote."""
    if not isinstance(data, dict):
        return None
    return Onset(threshold=_float(data, "threshold", 0.0), window_s=_float(data, "window_s", 0.0))


def _float(data: dict[str, Any], key: str, default: float) -> float:
    value = data.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _float_or_none(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(data: dict[str, Any], key: str, default: int) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str_or_none(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


@overload
def _enum(kind: type[_E], value: Any, default: _E) -> _E: ...
@overload
def _enum(kind: type[_E], value: Any, default: None) -> _E | None: ...
def _enum(kind: type[_E], value: Any, default: _E | None) -> _E | None:
    """The member whose text ``value`` is; ``default`` for any other value (an unknown
    one reads as what the sentence has always said for it)."""
    try:
        return kind(value) if isinstance(value, str) else default
    except ValueError:
        return default
