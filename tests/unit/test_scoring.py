"""Evidence components of one candidate, on a frozen clock (T0 + seconds)."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from tests.conftest import T0
from triage.correlation.scoring import GLOBAL_NODE, footprint_key, identity_values, score_candidate
from triage.correlation.state import IncidentState
from triage.domain.event import Severity
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph

P = CorrelationParameters()


def at(seconds: float):  # type: ignore[no-untyped-def]
    return T0 + timedelta(seconds=seconds)


def incident(opened: float = 0, **profile) -> IncidentState:  # type: ignore[no-untyped-def]
    inc = IncidentState(id="inc-1", scope="global", title="t", opened_at=at(opened), last_event_at=at(opened),
                        severity=Severity.error)
    inc.nodes = profile.get("nodes", {"payments": at(opened).timestamp()})
    inc.footprint = profile.get("footprint", {})
    inc.templates = profile.get("templates", {"A1": "Payments 5xx"})
    inc.labels = profile.get("labels", {})
    return inc


def score(inc: IncidentState, node: str = "payments", template: str = "A1", now: float = 10,
          graph: ServiceGraph | None = None, sim: float = 0.0, params: CorrelationParameters = P,
          identity: frozenset[str] = frozenset(), firing: bool = False):  # type: ignore[no-untyped-def]
    return score_candidate(inc, node=node, template_id=template, vector=np.ones(4, dtype=np.float32),
                           identity=identity, now=at(now), graph=graph or ServiceGraph(), params=params,
                           similarity=lambda _i, _t, _v: (sim, "nearest text"), firing=firing)


def test_same_service_same_template_scores_every_component() -> None:
    inc = incident(footprint={footprint_key("payments", "A1"): at(0).timestamp()})
    ev = score(inc, now=30)
    assert ev.components.text == 1.0 and ev.text_match == "same_template"
    assert ev.components.topology == 1.0 and ev.hops == 0
    assert ev.components.time == pytest.approx(math.exp(-30 / P.time_decay))
    assert ev.gap_from == "template" and ev.gap_s == 30 and ev.eligible
    expected = (P.weight_text + P.weight_topology + P.weight_time * math.exp(-0.1)) / sum(P.weights.values())
    assert ev.score == pytest.approx(expected)


def test_text_is_the_best_template_similarity_and_names_the_family() -> None:
    assert score(incident(), template="A2", sim=0.93).text_match == "same_family"
    ev = score(incident(), template="A2", sim=0.4)
    assert ev.components.text == 0.4 and ev.text_match == "similar" and ev.nearest_template == "nearest text"


def test_topology_decays_per_hop_and_is_zero_without_a_path() -> None:
    graph = ServiceGraph()
    graph.learn_call("checkout", "payments")
    graph.learn_call("frontend", "checkout")
    one, two = score(incident(), node="checkout", graph=graph), score(incident(), node="frontend", graph=graph)
    assert (one.components.topology, one.hops, one.via) == (0.5, 1, "payments")
    assert (two.components.topology, two.hops) == (0.25, 2)
    far = score(incident(), node="adservice", graph=graph)
    assert far.components.topology == 0.0 and not far.eligible and far.blocked == "no_topology"
    assert score(incident(), node="adservice", graph=graph,
                 params=CorrelationParameters(require_topology=False)).eligible


def test_an_event_without_service_leaves_topology_out_of_the_mean() -> None:
    ev = score(incident(), node=GLOBAL_NODE, template="A1", now=0)
    assert ev.components.topology is None and ev.eligible
    assert ev.score == pytest.approx((P.weight_text + P.weight_time) / (P.weight_text + P.weight_time))


def test_time_gap_is_measured_from_the_nearest_precedent() -> None:
    inc = incident(nodes={"payments": at(50).timestamp()},
                   footprint={footprint_key("payments", "A1"): at(20).timestamp()})
    assert score(inc, template="A1", now=60).gap_s == 40          # same template on the service
    assert score(inc, template="A9", now=60).gap_s == 10          # same service
    inc.last_event_at = at(55)
    assert score(inc, node="checkout", graph=_edge(), now=60).gap_s == 5   # anywhere
    late = score(incident(opened=100), now=40)                    # a late event
    assert late.gap_s == 60 and late.gap_from == "before_open"


def _edge() -> ServiceGraph:
    graph = ServiceGraph()
    graph.learn_call("checkout", "payments")
    return graph


def test_settled_incident_blocks_what_it_has_not_shown() -> None:
    old = P.propagation_window + 1
    inc = incident(footprint={footprint_key("payments", "A1"): at(0).timestamp()})
    assert score(inc, template="A1", now=old).eligible                       # shown before
    assert score(inc, template="A1", now=old, firing=True).eligible          # ... an alert too
    # same family on a service it showed within its propagation window: a log or span joins,
    # a firing alert does not (the same alert rule fires on every service a fault reaches)
    inc.nodes["payments"] = at(old - 60).timestamp()
    assert score(inc, template="A2", sim=0.95, now=old).eligible
    assert score(inc, template="A2", sim=0.95, now=old, firing=True).blocked == "settled"
    inc.nodes["payments"] = at(0).timestamp()                                # quiet there since
    assert score(inc, template="A2", sim=0.95, now=old).blocked == "settled"
    blocked = score(inc, template="A2", sim=0.5, now=old)
    assert not blocked.eligible and blocked.blocked == "settled"
    new_service = score(inc, node="checkout", graph=_edge(), template="A1", now=old)
    assert new_service.blocked == "settled" and new_service.text_match == "same_template"
    young = score(inc, node="checkout", graph=_edge(), template="A7", now=60)
    assert young.eligible


def test_shared_identity_labels() -> None:
    inc = incident(labels={"pod-abc": at(0).timestamp()})
    assert score(inc, identity=frozenset({"pod-abc"})).components.labels == 1.0
    assert score(inc, identity=frozenset({"pod-xyz"})).components.labels == 0.0
    assert identity_values({"pod": "p1", "alertname": "X", "k8s.pod.name": "p2"}, "node-1") == {"p1", "p2", "node-1"}


def test_weights_are_parameters() -> None:
    text_only = CorrelationParameters(weight_text=1.0, weight_topology=0.0, weight_time=0.0)
    assert score(incident(), template="A2", sim=0.3, params=text_only).score == pytest.approx(0.3)
