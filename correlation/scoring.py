"""How well an event fits an open incident: evidence components, each in [0, 1].

* ``text``: 1 when the incident already holds the event's template; otherwise the best
  cosine between the event's template embedding and the incident's templates'.
* ``topology``: 1 when the incident already holds the event's service (or host);
  ``hop_decay ** hops`` to the nearest node it holds within ``max_hops`` of the service
  graph; 0 when no relation is known. An event with neither service nor host has no
  place in the graph: its topology is unknown and left out of the mean; so is any
  event's against a cluster alert's incident younger than ``onset_window``.
* ``time``: ``exp(-gap / time_decay)``, the gap measured from the incident's last event
  on the same (service, template), else on the same service, else on any.
* ``labels``: 1 when the event shares an identity label value (pod, node, instance,
  host) with the incident, else 0.
* ``family`` (only with fitted families and ``weight_family`` > 0): 1 when the event's
  template is in an alert family the incident already shows, else 0. With fitted
  families the evidence names the event's family and whether the incident shows it
  (``family``, ``family_match``) whatever the weight, so that a decision can say "same
  alert family" without the family changing its score.

``gap_from == "template"`` means the incident has already shown this very template on
this service (a precedent); the correlator prefers such an incident over others.

The score is the weighted mean. Two rules can make a candidate ineligible whatever
its score: ``settled`` (the incident is older than ``propagation_window`` and the
event is new to it: neither a (service, template) pair it has shown, nor, for a log or
span (not a firing alert), a template of the same family on one of its services that it
showed within ``propagation_window``) and ``no_topology`` (another service with no
known relation, when ``require_topology``). Pure functions of their inputs: time is
passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from triage.correlation.evidence import Blocked, Candidate, Components, GapFrom, Onset, TextMatch
from triage.correlation.state import IncidentState
from triage.domain.event import Event
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph, host_node

__all__ = ["CandidateFit", "EventFit", "GLOBAL_NODE", "at_onset", "footprint_key", "fresh_precedent", "node_of",
           "score_candidate"]

GLOBAL_NODE = "global"
_HOST = host_node("")   # the prefix of a host's node
_CLUSTER_ONLY = frozenset({GLOBAL_NODE})


def node_of(event: Event) -> str:
    """Where an event sits in the service graph: its service, else its host, else nowhere."""
    if event.service:
        return event.service
    if event.host:
        return host_node(event.host)
    return GLOBAL_NODE


def footprint_key(node: str, template_id: str) -> str:
    return f"{node}|{template_id}"


# Not frozen (but treat it as immutable): one is built per candidate per event, and a
# frozen dataclass pays an ``object.__setattr__`` per field, five times the cost. The
# decision quotes the one joined (or the best rejected) as a frozen ``Candidate``.
@dataclass(slots=True)
class CandidateFit:
    """How well an event fits one incident: the components (``topology`` None when the
    event has no place in the graph, ``family`` None unless families are weighted), the
    weighted score, and whether a rule blocks it whatever its score."""

    incident_id: str
    score: float
    eligible: bool
    text: float
    time: float
    labels: float
    topology: float | None = None
    family: float | None = None
    blocked: Blocked | None = None
    text_match: TextMatch = TextMatch.similar
    nearest_template: str | None = None
    hops: int | None = None
    via: str | None = None                # the incident's node the event is nearest to
    gap_s: float = 0.0
    gap_from: GapFrom = GapFrom.incident
    incident_age_s: float = 0.0
    family_id: int | None = None          # the event's fitted alert family (with fitted families)
    family_match: bool = False            # ... which the incident already shows

    @property
    def components(self) -> Components:
        return Components(text=self.text, time=self.time, labels=self.labels, topology=self.topology,
                          family=self.family)

    def candidate(self) -> Candidate:
        """What a decision says of this fit: rounded as stored (4 places, seconds to 3)."""
        topology, nearest, hops = self.topology, self.nearest_template, self.hops
        # One of these is built for most events, so: positional arguments, in
        # ``Candidate``'s and ``Components``' field order; and no ``round`` (a quarter of
        # a microsecond each) where it changes nothing: ``labels`` and ``family`` are 0 or
        # 1, and ``text`` and ``topology`` mostly exactly 1 (same template, same service).
        return Candidate(
            self.incident_id, round(self.score, 4),
            Components(_round4(self.text), round(self.time, 4), self.labels,
                       None if topology is None else _round4(topology), self.family),
            self.text_match, round(self.gap_s, 3), self.gap_from, round(self.incident_age_s, 3),
            None if nearest is None else nearest[:160], hops, self.via if hops is not None else None, self.blocked,
            self.family_id, self.family_match)


def _round4(value: float) -> float:
    """``round(value, 4)``, which 0 and 1 already are."""
    return value if value == 1.0 or value == 0.0 else round(value, 4)


# The values score_candidate picks from, per candidate: an enum member read from its
# class costs three times a module global.
_SAME_TEMPLATE, _SAME_FAMILY, _SIMILAR, _NOT_SCORED = (
    TextMatch.same_template, TextMatch.same_family, TextMatch.similar, TextMatch.not_scored)
_FROM_TEMPLATE, _FROM_SERVICE, _FROM_INCIDENT, _BEFORE_OPEN = (
    GapFrom.template, GapFrom.service, GapFrom.incident, GapFrom.before_open)
_SETTLED, _NO_TOPOLOGY = Blocked.settled, Blocked.no_topology


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def score_candidate(
    incident: IncidentState,
    *,
    node: str,
    template_id: str,
    vector: np.ndarray | None,
    identity: frozenset[str],
    now: datetime,
    graph: ServiceGraph,
    params: CorrelationParameters,
    similarity: Callable[[IncidentState, str, np.ndarray], tuple[float, str | None]] | None = None,
    family: int | None = None,
    incident_families: Callable[[IncidentState], set[int]] | None = None,
    distance: Callable[[IncidentState, str], tuple[int, str] | None] | None = None,
    firing: bool = False,
) -> CandidateFit:
    """The evidence that an event (its graph ``node``, template, identity labels) belongs
    to ``incident`` at ``now``: ``EventFit``, for one incident (``firing``: the event is a
    firing alert)."""
    return EventFit(node, template_id, vector, graph, params, similarity, family, incident_families,
                    distance).score(incident, identity, now, firing)


class EventFit:
    """Scoring for one (node, template) of one scope: what a fit depends on apart from the
    incident, the event's identity labels and the time, gathered once. The correlator
    keeps one per (node, template) while the scope's graph object is the same
    (``Correlator._fit_for``): in a storm most events repeat a template on a node, and a
    repeat then costs the incident's own look-ups and the time, not building the
    event's context again (docs/benchmarks.md, "Why the hot path is built as it is").

    ``similarity(incident, template_id, vector)`` gives the best cosine to the incident's
    templates and that template's text (the correlator caches it), ``distance(incident,
    node)`` what ``graph.distance`` says of the incident's nodes (cacheable as well).
    ``family``: the event's template's fitted alert family, with ``incident_families``."""

    __slots__ = ("node", "template_id", "vector", "graph", "params", "similarity", "family",
                 "incident_families", "distance", "precedent_key", "_weights")

    def __init__(self, node: str, template_id: str, vector: np.ndarray | None, graph: ServiceGraph,
                 params: CorrelationParameters,
                 similarity: Callable[[IncidentState, str, np.ndarray], tuple[float, str | None]] | None = None,
                 family: int | None = None, incident_families: Callable[[IncidentState], set[int]] | None = None,
                 distance: Callable[[IncidentState, str], tuple[int, str] | None] | None = None) -> None:
        self.node, self.template_id, self.vector, self.graph, self.params = node, template_id, vector, graph, params
        self.similarity, self.family, self.incident_families, self.distance = (
            similarity, family, incident_families, distance)
        self.precedent_key = footprint_key(node, template_id)
        p = params
        self._weights = (p.weight_text, p.weight_time, p.weight_labels, p.weight_topology, p.weight_family)

    def score(self, incident: IncidentState, identity: frozenset[str], now: datetime,
              firing: bool = False) -> CandidateFit:
        """How well the event (``firing``: a firing alert) fits ``incident`` at ``now``.
        Text similarity is only computed when it can change the outcome: for a candidate
        already blocked it is reported as 0 with ``text_match`` "not_scored"."""
        p = self.params
        node, template_id = self.node, self.template_id
        age = (now - incident.opened_at).total_seconds()
        precedent = fresh_precedent(incident, self.precedent_key, now, p)
        on_node = incident.nodes.get(node)

        # -- topology --------------------------------------------------------------
        # An event without a service or host has no place in the graph: its topology is
        # not low but unknown, and is left out of the weighted mean.
        hops: int | None = None
        via: str | None = None
        topology: float | None
        if node == GLOBAL_NODE:
            topology = None
        elif on_node is not None:
            topology, hops, via = 1.0, 0, node
        else:
            distance = self.distance
            found = distance(incident, node) if distance is not None \
                else self.graph.distance(node, incident.nodes, p.max_hops)
            if found is None:
                # A cluster alert's incident (CoreDNS, the API server: neither service nor
                # host) sits nowhere in the graph, yet its fault reaches every service in
                # its first minutes: while it is younger than onset_window, where the event
                # stands relative to it is unknown (left out of the mean), not unrelated.
                topology = None if age <= p.onset_window and incident.nodes.keys() == _CLUSTER_ONLY else 0.0
            else:
                hops, via = found
                topology = p.hop_decay ** hops

        blocked: Blocked | None = None
        if p.require_topology and topology == 0.0:
            blocked = _NO_TOPOLOGY
        settled = age > p.propagation_window and precedent is None

        # -- text ------------------------------------------------------------------
        nearest: str | None = None
        known = incident.templates.get(template_id)
        vector, similarity = self.vector, self.similarity
        if known is not None:
            text, text_match, nearest = 1.0, _SAME_TEMPLATE, known
        elif blocked is not None or (settled and on_node is None) or vector is None or similarity is None:
            text, text_match = 0.0, _NOT_SCORED
        else:
            text, nearest = similarity(incident, template_id, vector)
            text = min(1.0, max(0.0, text))
            text_match = _SAME_FAMILY if text >= p.family_threshold else _SIMILAR
        # A settled incident takes a new (service, template) pair only as a log or span of
        # the same family as one of its templates, on a service where it showed within its
        # propagation window. Not a firing alert: the same alert rule fires on every service
        # a fault reaches, and successive incidents on the same services fire it alike.
        if blocked is None and settled and not (on_node is not None and not firing and text >= p.family_threshold
                                                and now.timestamp() - on_node <= p.propagation_window):
            blocked = _SETTLED

        # -- time ------------------------------------------------------------------
        if precedent is not None:
            seen, gap_from = precedent, _FROM_TEMPLATE
        elif on_node is not None:
            seen, gap_from = on_node, _FROM_SERVICE
        else:
            seen, gap_from = incident.last_event_at.timestamp(), _FROM_INCIDENT
        if age < 0:   # a late event, from before the incident opened: as far as it is early
            gap, gap_from = -age, _BEFORE_OPEN
        else:
            gap = max(0.0, now.timestamp() - seen)
        time_c = math.exp(-gap / p.time_decay)

        # -- labels ----------------------------------------------------------------
        # (asked of the labels' keys view, which iterates the event's one or two values
        # rather than the incident's up to 64 labels)
        labels = 1.0 if identity and not incident.labels.keys().isdisjoint(identity) else 0.0

        # The weighted mean over the components present, added up in the components'
        # order (text, time, labels, topology, family): spelled out rather than with
        # ``sum`` over ``p.weights`` (a new dict per call), as this runs per candidate.
        w_text, w_time, w_labels, w_topology, w_family = self._weights
        total = w_text + w_time + w_labels
        value = w_text * text + w_time * time_c + w_labels * labels
        if topology is not None:
            total += w_topology
            value += w_topology * topology
        fam: float | None = None
        family_id: int | None = None
        same_family = False
        incident_families = self.incident_families
        if incident_families is not None:
            family = self.family
            same_family = family is not None and family in incident_families(incident)
            family_id = family
            if w_family > 0:
                fam = 1.0 if same_family else 0.0
                total += w_family
                value += w_family * fam
        value = value / total if total > 0 else 0.0
        # (positional, in field order: one per candidate per event)
        return CandidateFit(incident.id, value, blocked is None, text, time_c, labels, topology, fam, blocked,
                            text_match, nearest, hops, via, gap, gap_from, age, family_id, same_family)


def fresh_precedent(incident: IncidentState, key: str, now: datetime, params: CorrelationParameters) -> float | None:
    """When ``incident`` last showed the (node, template) pair ``key``, if it did within
    ``resolve_timeout`` of ``now``: only then is the pair a precedent. A pair the incident
    has not shown for that long is over there (Alertmanager's rule for an alert not heard
    of), and its next event is new to the incident: otherwise an incident kept open for
    hours by one long fault (a full disk, a leak) took in every later incident's first
    alerts on the services it had once touched (a frontend's 5xx rate, a probe)."""
    seen = incident.footprint.get(key)
    return seen if seen is not None and now.timestamp() - seen <= params.resolve_timeout else None


def at_onset(node: str, fits: Iterable[CandidateFit], best: CandidateFit | None, onset: Onset | None,
             rank: Callable[[CandidateFit], Any],
             downstream: Callable[[CandidateFit], bool] | None = None,
             records_only: Callable[[CandidateFit], bool] | None = None,
             ) -> tuple[CandidateFit | None, Onset | None]:
    """For an event on ``node`` that fits no candidate at ``threshold`` (``best``: the best
    below it, if any): the candidate it joins at its onset and why (``onset``: None when
    the rule is off), else ``best`` and None. That is the best by ``rank`` of the
    candidates younger than ``onset.window_s`` (``onset_window``; an event from before
    one opened included), related to the event's node in the service graph (within
    ``max_hops``: a call, a placement, two services on one host), no rule blocking it,
    scoring at least ``onset.threshold`` (``threshold`` less ``onset_margin``). A fault
    shows on its neighbours one symptom after another in its first minutes, and a
    symptom's first event (a log or span on a neighbour, on another pod of the failing
    node) often fits the young group poorly on text: alone, it would open a group that
    pages again.

    An event of a host (a node's alert) joins only a group that is still records
    (``records_only``: its services' logs and spans, no alert has made it an incident),
    and not at all without that test. A node's fault shows first in the records of the
    pods it runs, then in its own alert, before any service's alert rule has fired
    (their ``for:`` durations): the node's alert is then the group's first. A group a
    service's alert has already opened has its own first sign, and a node's alert after
    it is most often the node's own noise, which would become the incident's probable
    cause.

    And only one way along a call (``downstream``: the event's node is, next to the
    candidate, only a callee of its nodes; given for a log record or span): a fault
    spreads from a callee to its callers, and a callee's records come as its trouble
    happens, so a callee whose fault began the incident would have shown it first. A
    callee's record after its caller's group formed is trouble of its own. Its alerts
    join still: a rule fires only after its ``for:`` duration, after the callers' errors
    (a datastore's alert after its clients' timeouts)."""
    if onset is None:
        return best, None
    if node.startswith(_HOST):
        if records_only is None:
            return best, None
        fits = [e for e in fits if records_only(e)]
    young = max((e for e in fits if _at_onset(e, onset) and not _held_back(e, downstream)), key=rank, default=None)
    return (young, onset) if young is not None else (best, None)


def _at_onset(fit: CandidateFit, onset: Onset) -> bool:
    # (``hops`` is None when the graph relates the event to none of the incident's nodes
    # within ``max_hops``)
    return (fit.eligible and fit.hops is not None and fit.score >= onset.threshold
            and fit.incident_age_s <= onset.window_s)


def _held_back(fit: CandidateFit, downstream: Callable[[CandidateFit], bool] | None) -> bool:
    return fit.hops == 1 and downstream is not None and downstream(fit)


def refused_downstream(node: str, fit: CandidateFit, onset: Onset | None,
                       downstream: Callable[[CandidateFit], bool] | None) -> CandidateFit:
    """``fit`` as the evidence of a new group states it: marked ``Blocked.downstream``
    when ``at_onset`` would have joined it but for the direction of the call."""
    if onset is None or node.startswith(_HOST) or not _at_onset(fit, onset) or not _held_back(fit, downstream):
        return fit
    return replace(fit, blocked=Blocked.downstream)


def identity_values(labels: Mapping[str, Any], host: str | None) -> frozenset[str]:
    """The label values that name one concrete thing (a pod, a node, an instance)."""
    values = {str(v) for k, v in labels.items() if k in _IDENTITY_KEYS and v not in (None, "")}
    if host:
        values.add(host)
    return frozenset(values)


_IDENTITY_KEYS = frozenset({
    "pod", "k8s.pod.name", "node", "k8s.node.name", "instance", "host", "host.name", "hostname",
    "container_id",
})
