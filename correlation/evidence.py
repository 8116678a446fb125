"""A decision's evidence, typed: one frozen class per kind of decision, each value named.

What the engine writes, per rule:

* ``duplicate``: ``Duplicate`` (the signal, how often and how long ago it was seen);
* ``alert_resolved``: ``Resolve`` (alerts still firing; whether the incident resolved,
  and before its first page was due: ``transient``);
* ``correlated``: ``Joined``, where the event was scored (``Placement``: scope, node,
  template, the ``Criteria`` it was judged by, how many candidates) and the ``Candidate``
  it joined (score and ``Components``, gap, hops, family), and whether it turned a noise
  group into an incident (``promoted``) or re-opened a resolved one (``reopened``), and,
  when it joined below ``threshold`` because the incident was at its onset, ``Onset``;
* ``new_incident`` / ``noise_group``: ``Opened``, the placement and the best candidate
  it did not join (why not: its score, or ``blocked``);
* ``merged`` / ``split``: ``Merged`` / ``Split``, a responder's correction, with the
  decision it replaced (``Original``).

A firing alert whose last episode ended without a resolve says so in either placement
(``previous_episode``). Stored decisions of the baseline correlator read back as
``BaselineJoined`` / ``BaselineOpened``, and a rule this version does not know (written
by a newer one) as ``Unrecognized``.

The evidence becomes JSON only where the store writes a membership row: ``as_json()``
builds the document, with the same keys as ever (the API's ``evidence`` shows it), and
``stored_evidence.evidence_from_json(rule, document)`` reads one back into these types,
tolerantly. Evidence read back keeps the document it was read from (``read_from``) and
``as_json()`` returns that one as stored, so a stored row comes back exactly (a key this
version does not know included), whether the API shows it or a correction quotes it as
the ``original``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, ClassVar

from triage.correlation.holds import Hold, Release
from triage.models.parameters import CorrelationParameters

__all__ = [
    "BaselineJoined", "BaselineOpened", "Blocked", "Candidate", "Components", "Criteria", "Duplicate",
    "EpisodeEnd", "Evidence", "GapFrom", "Joined", "Merged", "Onset", "Opened", "Original", "Placement",
    "PreviousEpisode", "Resolve", "Rule", "Split", "TextMatch", "Unrecognized", "Weights",
    "rule_of",
]


class Rule(StrEnum):
    """The rule that decided; the text is what the store and the API show."""

    duplicate = "duplicate"                 # the signal is already known and live
    alert_resolved = "alert_resolved"       # a resolve for a firing alert, on its incident
    correlated = "correlated"               # joined the best candidate at or above the threshold
    new_incident = "new_incident"           # a firing alert that fit no group opened an incident
    noise_group = "noise_group"             # anything else that fit no group: pages nobody
    merged = "merged"                       # a responder merged its incident into another
    split_off = "split"                     # a responder split it off into a new incident
    #                                         (not ``split``, which would hide ``str.split``)
    same_scope_within_window = "same_scope_within_window"   # the baseline's join, in stored decisions


_RULES = {r.value: r for r in Rule}


def rule_of(text: str) -> Rule | str:
    """A stored rule: the ``Rule``, or its text if this version does not know it."""
    return _RULES.get(text, text)


class TextMatch(StrEnum):
    same_template = "same_template"   # the incident already holds the event's template
    same_family = "same_family"       # cosine to its nearest template at or above family_threshold
    similar = "similar"
    not_scored = "not_scored"         # blocked before its text was compared


class GapFrom(StrEnum):
    """What the time gap was measured from: the incident's last event with the same
    (service, template), else on the same service, else its last event at all; or, for a
    late event, how long before the incident opened it happened."""

    template = "template"
    service = "service"
    incident = "incident"
    before_open = "before_open"


class Blocked(StrEnum):
    settled = "settled"           # past its propagation window, and the event is new to it
    no_topology = "no_topology"   # no known relation between the services (require_topology)
    downstream = "downstream"     # at the incident's onset only: a record of a service it only calls


class EpisodeEnd(StrEnum):
    started_later = "started_later"       # it says it started after we last heard of it
    resolve_timeout = "resolve_timeout"   # silent for resolve_timeout


# -- the parts -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Components:
    """The score's components, each in [0, 1] (see ``scoring``)."""

    text: float
    time: float
    labels: float
    topology: float | None = None   # None: the event has no place in the service graph
    family: float | None = None     # None: fitted families are not weighted

    def as_json(self) -> dict[str, float]:
        out = {"text": self.text, "time": self.time, "labels": self.labels}
        if self.topology is not None:
            out["topology"] = self.topology
        if self.family is not None:
            out["family"] = self.family
        return out


@dataclass(frozen=True, slots=True)
class Weights:
    text: float
    topology: float
    time: float
    labels: float
    family: float

    @classmethod
    def of(cls, p: CorrelationParameters) -> Weights:
        return cls(text=p.weight_text, topology=p.weight_topology, time=p.weight_time, labels=p.weight_labels,
                   family=p.weight_family)

    def as_json(self) -> dict[str, float]:
        return {"text": self.text, "topology": self.topology, "time": self.time, "labels": self.labels,
                "family": self.family}


@dataclass(frozen=True, slots=True)
class Criteria:
    """What a score was judged by: the same for every decision of one correlator."""

    threshold: float
    weights: Weights
    parameters_version: int | None   # None: a stored decision that does not say
    window_s: float
    # the weights as every document quotes them, built once (a document only reads it)
    weights_json: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights_json", self.weights.as_json())   # frozen: set once, here

    @classmethod
    def of(cls, p: CorrelationParameters, parameters_version: int) -> Criteria:
        return cls(threshold=p.threshold, weights=Weights.of(p), parameters_version=parameters_version,
                   window_s=p.window)


@dataclass(frozen=True, slots=True)
class PreviousEpisode:
    """The firing alert's earlier episode, which ended without its resolve reaching us."""

    incident: str
    ended: EpisodeEnd

    def as_json(self) -> dict[str, str]:
        return {"incident": self.incident, "ended": str(self.ended)}


@dataclass(frozen=True, slots=True)
class Candidate:
    """How an event fit one incident: the one it joined, or the best it did not.
    Rounded as stored (score and components to 4 places, seconds to 3)."""

    incident: str
    score: float
    components: Components
    text_match: TextMatch
    gap_s: float
    gap_from: GapFrom
    incident_age_s: float
    nearest_template: str | None = None   # the incident's template nearest the event's (160 chars)
    hops: int | None = None               # graph distance to the incident's nearest node, if related
    via: str | None = None                # that node
    blocked: Blocked | None = None
    family: int | None = None             # the event's fitted alert family, if it has one
    family_match: bool = False            # the incident already shows that family

    def write(self, out: dict[str, Any]) -> None:
        """Add this candidate's keys to ``out``, after the ones it has."""
        out["incident"] = self.incident
        out["score"] = self.score
        out["components"] = self.components.as_json()
        out["text_match"] = str(self.text_match)
        out["gap_s"] = self.gap_s
        out["gap_from"] = str(self.gap_from)
        out["incident_age_s"] = self.incident_age_s
        self.write_optional(out)

    def write_optional(self, out: dict[str, Any]) -> None:
        if self.nearest_template is not None:
            out["nearest_template"] = self.nearest_template
        if self.hops is not None:
            out["hops"] = self.hops
            out["via"] = self.via
        if self.blocked is not None:
            out["blocked"] = str(self.blocked)
        if self.family is not None:
            out["family"] = self.family
            out["family_match"] = self.family_match

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.write(out)
        return out


@dataclass(frozen=True, slots=True)
class Onset:
    """Why an event joined below ``threshold``: the incident was at its onset (younger
    than ``window_s``, the ``onset_window``), the event's node related to it in the
    service graph, and the score at least ``threshold`` (the criteria's less
    ``onset_margin``)."""

    threshold: float
    window_s: float

    @classmethod
    def of(cls, p: CorrelationParameters) -> Onset:
        return cls(threshold=round(max(0.0, p.threshold - p.onset_margin), 4), window_s=p.onset_window)

    def as_json(self) -> dict[str, float]:
        return {"threshold": self.threshold, "window_s": self.window_s}


@dataclass(frozen=True, slots=True)
class Original:
    """The decision a responder's correction replaced."""

    rule: Rule | str
    evidence: Evidence

    def as_json(self) -> dict[str, Any]:
        return {"rule": str(self.rule), "evidence": self.evidence.as_json()}


# -- the evidence of each kind of decision ------------------------------------------------------
#
# ``read_from``: the stored document it was read from, which ``as_json`` returns as it is
# (None for evidence the engine just built). Not an init argument, so that
# ``dataclasses.replace`` makes evidence that builds its own document.

def _read_from() -> Any:
    return field(default=None, init=False, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Duplicate:
    dedup_key: str
    template: str | None              # None: decided before templates were recorded
    reason: str                       # "same fingerprint, same status" | "identical text"
    first_seen: datetime | None       # when the signal was first seen (None: not said)
    seen_before: int
    since_last_s: float
    read_from: dict[str, Any] | None = _read_from()

    def as_json(self) -> dict[str, Any]:
        if self.read_from is not None:
            return self.read_from
        if self.template is not None and self.first_seen is not None:   # as the engine writes it
            return {"dedup_key": self.dedup_key, "template": self.template, "reason": self.reason,
                    "first_seen": _iso(self.first_seen), "seen_before": self.seen_before,
                    "since_last_s": self.since_last_s}
        out: dict[str, Any] = {"dedup_key": self.dedup_key}
        if self.template is not None:
            out["template"] = self.template
        out["reason"] = self.reason
        if self.first_seen is not None:
            out["first_seen"] = _iso(self.first_seen)
        out["seen_before"] = self.seen_before
        out["since_last_s"] = self.since_last_s
        return out


@dataclass(frozen=True, slots=True)
class Resolve:
    dedup_key: str
    template: str | None              # None: decided before templates were recorded
    still_firing: int                 # the incident's alerts still firing after this resolve
    incident_resolved: bool = False   # it was the last: the incident resolved
    transient: bool = False           # ... before its first page was due: nobody was paged
    read_from: dict[str, Any] | None = _read_from()

    def as_json(self) -> dict[str, Any]:
        if self.read_from is not None:
            return self.read_from
        out: dict[str, Any] = {"dedup_key": self.dedup_key}
        if self.template is not None:
            out["template"] = self.template
        out["still_firing"] = self.still_firing
        if self.incident_resolved:
            out["incident_resolved"] = True
        if self.transient:
            out["transient"] = True
        return out


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an event that was not a duplicate was scored: its scope, its node in the
    service graph (``service``: a service, ``host:<name>`` or ``global``), its template,
    the criteria, how many candidates were scored, and the episode of its alert that
    ended unresolved, if any."""

    scope: str
    service: str
    template: str
    criteria: Criteria
    candidates: int
    previous_episode: PreviousEpisode | None

    def placement_json(self) -> dict[str, Any]:
        c = self.criteria
        out = {"scope": self.scope, "service": self.service, "template": self.template, "threshold": c.threshold,
               "weights": c.weights_json, "parameters_version": c.parameters_version,
               "candidates": self.candidates, "window_s": c.window_s}
        if self.previous_episode is not None:
            out["previous_episode"] = self.previous_episode.as_json()
        return out


@dataclass(frozen=True, slots=True)
class Joined(Placement):
    match: Candidate                  # the incident joined, and how well the event fit it
    promoted: bool = False            # its first alert made this noise group an incident
    reopened: bool = False            # the alert fired again: its resolved incident reopened
    hold: Hold | None = None          # its first page held: auto-pause, or a damped family (promoted)
    release: Release | None = None    # the damped incident changed: its first page falls due
    onset: Onset | None = None        # joined below threshold: the incident was at its onset
    read_from: dict[str, Any] | None = _read_from()

    def as_json(self) -> dict[str, Any]:
        if self.read_from is not None:
            return self.read_from
        m = self.match
        if self.previous_episode is None:
            # Most events, every write: one dict display rather than a key at a time.
            c = self.criteria
            out = {"scope": self.scope, "service": self.service, "template": self.template,
                   "threshold": c.threshold, "weights": c.weights_json, "parameters_version": c.parameters_version,
                   "candidates": self.candidates, "window_s": c.window_s, "incident": m.incident, "score": m.score,
                   "components": m.components.as_json(), "text_match": str(m.text_match), "gap_s": m.gap_s,
                   "gap_from": str(m.gap_from), "incident_age_s": m.incident_age_s}
            m.write_optional(out)
        else:
            out = self.placement_json()
            m.write(out)
        if self.promoted:
            out["promoted"] = True
        if self.reopened:
            out["reopened"] = True
        if self.hold is not None:
            out["hold"] = self.hold.as_json()
        if self.release is not None:
            out["released"] = self.release.as_json()
        if self.onset is not None:
            out["onset"] = self.onset.as_json()
        return out


@dataclass(frozen=True, slots=True)
class Opened(Placement):
    best_candidate: Candidate | None = None   # the best incident scored, not joined (why: its score or blocked)
    hold: Hold | None = None                  # its first page held: auto-pause, or a damped family
    read_from: dict[str, Any] | None = _read_from()

    def as_json(self) -> dict[str, Any]:
        if self.read_from is not None:
            return self.read_from
        out = self.placement_json()
        if self.best_candidate is not None:
            out["best_candidate"] = self.best_candidate.as_json()
        if self.hold is not None:
            out["hold"] = self.hold.as_json()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Correction:
    """A responder's merge or split: from which incident, by whom, why, when, and the
    decision it replaced."""

    PREFIX: ClassVar[str] = ""

    source: str | None                # the incident the event came from (None: not said)
    by: str | None                    # the responder (None: not said)
    reason: str
    at: datetime | None
    original: Original | None
    read_from: dict[str, Any] | None = _read_from()

    @property
    def template(self) -> None:
        return None

    def as_json(self) -> dict[str, Any]:
        if self.read_from is not None:
            return self.read_from
        p = self.PREFIX
        out: dict[str, Any] = {f"{p}_from": self.source, f"{p}_by": self.by, "reason": self.reason}
        if self.at is not None:
            out[f"{p}_at"] = self.at.isoformat()
        if self.original is not None:
            out["original"] = self.original.as_json()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Merged(Correction):
    PREFIX: ClassVar[str] = "merged"


@dataclass(frozen=True, slots=True, kw_only=True)
class Split(Correction):
    PREFIX: ClassVar[str] = "split"


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineJoined:
    """``same_scope_within_window``: the baseline correlator joined the scope's open incident."""

    scope: str
    gap_s: float
    window_s: float
    incident_age_s: float | None = None
    max_incident_age_s: float | None = None
    read_from: dict[str, Any] | None = _read_from()

    @property
    def template(self) -> None:
        return None

    def as_json(self) -> dict[str, Any]:
        if self.read_from is not None:
            return self.read_from
        out: dict[str, Any] = {"scope": self.scope, "gap_s": self.gap_s, "window_s": self.window_s}
        if self.incident_age_s is not None:
            out["incident_age_s"] = self.incident_age_s
        if self.max_incident_age_s is not None:
            out["max_incident_age_s"] = self.max_incident_age_s
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineOpened:
    """A ``new_incident`` of the baseline correlator, where the scope had an open incident
    too old or too quiet to join."""

    scope: str
    previous_incident: str
    gap_s: float
    window_s: float
    read_from: dict[str, Any] | None = _read_from()

    @property
    def template(self) -> None:
        return None

    def as_json(self) -> dict[str, Any]:
        if self.read_from is not None:
            return self.read_from
        return {"scope": self.scope, "previous_incident": self.previous_incident, "gap_s": self.gap_s,
                "window_s": self.window_s}


@dataclass(frozen=True, slots=True, kw_only=True)
class Unrecognized:
    """The evidence of a rule this version does not know (a newer one wrote it)."""

    rule: str
    read_from: dict[str, Any] | None = _read_from()

    @property
    def template(self) -> None:
        return None

    def as_json(self) -> dict[str, Any]:
        return self.read_from if self.read_from is not None else {}


Evidence = (Duplicate | Resolve | Joined | Opened | Merged | Split | BaselineJoined | BaselineOpened
            | Unrecognized)


# -- writing --------------------------------------------------------------------------------

_ISO: dict[datetime, str] = {}


def _iso(at: datetime) -> str:
    """``at.isoformat()``, remembered for UTC instants (two equal instants in other zones
    would write differently): every duplicate of a signal quotes its first sighting, and
    isoformat costs a microsecond, more than the rest of the document."""
    if at.tzinfo is not timezone.utc:
        return at.isoformat()
    text = _ISO.get(at)
    if text is None:
        if len(_ISO) >= 4096:
            _ISO.clear()
        text = _ISO[at] = at.isoformat()
    return text
