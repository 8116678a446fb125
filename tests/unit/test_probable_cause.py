"""Probable cause: onset, the graph, alert kinds, placement and changes, each with its evidence."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import T0, make_event
from triage.domain.change import Change, ChangeKind
from triage.domain.event import Event
from triage.models.catalog import Catalog
from triage.models.probable_cause import (AlertClass, CallGraph, ComponentType, classify_alert, component_owner,
                                          rank_causes, signals_from_events)

CATALOG = Catalog.from_yaml("""
services:
  - {service: frontend, team: storefront, depends_on: [cartservice, checkoutservice]}
  - {service: checkoutservice, team: checkout, depends_on: [cartservice]}
  - {service: cartservice, team: cart, depends_on: [redis-cart]}
  - {service: redis-cart, kind: datastore, team: cart}
  - {service: platform, kind: platform, team: sre}
teams: [{team: storefront}, {team: checkout}, {team: cart}, {team: sre}]
""")
GRAPH = CallGraph.of(CATALOG)


def alert(seconds: float, service: str | None, name: str, host: str | None = None, **labels: str) -> Event:
    return make_event(seconds, service=service, host=host, title=name, labels={"alertname": name, **labels})


def log(seconds: float, service: str, text: str, host: str | None = None) -> Event:
    return make_event(seconds, kind="log", severity="error", service=service, host=host, title=text, labels={})


def rank(events: list[Event], changes: list[Change] | None = None) -> list[tuple[str, tuple[str, ...]]]:
    ranked = rank_causes(signals_from_events(events, CATALOG), GRAPH, changes or [], catalog=CATALOG)
    return [(c.component, c.evidence) for c in ranked]


def test_a_callee_failing_before_its_callers_is_the_cause_with_that_evidence() -> None:
    ranked = rank([alert(0, "redis-cart", "RedisDown"), alert(40, "cartservice", "IstioHigh5xxErrorRate"),
                   alert(90, "frontend", "IstioHigh5xxErrorRate")])
    assert [c for c, _ in ranked] == ["redis-cart", "cartservice", "frontend"]
    assert "first error 40 s before cartservice, which calls it" in ranked[0][1]
    assert "datastore alert RedisDown" in ranked[0][1]
    assert "its callee cartservice failed 50 s before it" in ranked[2][1]


def test_a_caller_that_failed_first_still_loses_to_its_callee_with_a_resource_alert() -> None:
    # checkoutservice's symptom came 10 s earlier, but cartservice is OOM-killed and checkout calls it
    ranked = rank([alert(0, "checkoutservice", "IstioHighRequestLatency"),
                   alert(10, "cartservice", "KubernetesContainerOomKiller"),
                   alert(30, "frontend", "IstioHighRequestLatency")])
    assert ranked[0][0] == "cartservice"


def test_a_node_alert_names_the_host_and_services_failing_mostly_on_one_host_point_at_it() -> None:
    node = "node-a"
    events = [log(0, s, "connection refused", host=node) for s in ("cartservice", "checkoutservice", "frontend")]
    events.append(alert(60, None, "KubernetesNodeNotReady", host=node, node=node))
    [(first, evidence), *_] = rank(events)
    assert first == node
    assert "node alert KubernetesNodeNotReady" in evidence
    assert any(e.startswith("3 services failing mostly on it") for e in evidence)
    # without its alert, the placement alone still lists it among the first three
    assert node in [c for c, _ in rank(events[:-1])]


def test_an_alert_without_service_or_host_names_the_cluster() -> None:
    event = alert(0, None, "CorednsPanicCount", cluster="prod-eu1")
    assert classify_alert(event, CATALOG) is AlertClass.cluster
    [signal] = signals_from_events([event], CATALOG)
    assert (signal.component, signal.type) == ("prod-eu1", ComponentType.cluster)
    assert component_owner("prod-eu1", ComponentType.cluster, CATALOG) == "platform"


def test_a_datastore_named_in_its_callers_errors_is_a_candidate_before_its_own_alert() -> None:
    ranked = rank([log(0, "cartservice", "Can't access cart storage: RedisTimeoutException"),
                   alert(30, "cartservice", "IstioHigh5xxErrorRate"), alert(60, "frontend", "IstioHigh5xxErrorRate")])
    assert ranked[0][0] == "redis-cart"
    assert "named in the errors of cartservice, which calls it" in ranked[0][1]


def test_a_change_is_one_signal_weighed_by_how_near_it_came_not_a_verdict() -> None:
    events = [alert(0, "cartservice", "IstioHigh5xxErrorRate"), alert(40, "frontend", "IstioHigh5xxErrorRate")]
    deploy = Change("c1", "frontend", ChangeKind.deploy, T0 - timedelta(minutes=2), "frontend v2", "webhook")
    ranked = rank(events, [deploy])
    # a deploy of the caller just before does not outrank the callee that failed first
    assert ranked[0][0] == "cartservice"
    assert any(e.startswith("changed 3 min before its first sign: frontend v2") for e in ranked[1][1])
    # on the component that failed first, it is evidence, and an old one weighs next to nothing
    own = Change("c2", "cartservice", ChangeKind.deploy, T0 - timedelta(minutes=1), "cartservice v7", "webhook")
    old = Change("c3", "cartservice", ChangeKind.deploy, T0 - timedelta(minutes=55), "cartservice v6", "webhook")
    near = rank_causes(signals_from_events(events, CATALOG), GRAPH, [own], catalog=CATALOG)[0]
    far = rank_causes(signals_from_events(events, CATALOG), GRAPH, [old], catalog=CATALOG)[0]
    none = rank_causes(signals_from_events(events, CATALOG), GRAPH, [], catalog=CATALOG)[0]
    assert near.score > far.score > none.score and far.score - none.score < 0.01


def test_resolves_are_not_signs_and_confidences_are_ordered_shares() -> None:
    resolved = make_event(0, service="frontend", status="resolved", title="x", labels={"alertname": "x"})
    assert signals_from_events([resolved], CATALOG) == []
    assert rank_causes([], GRAPH) == []
    ranked = rank_causes(signals_from_events([alert(0, "redis-cart", "RedisDown"),
                                              alert(40, "cartservice", "IstioHigh5xxErrorRate")], CATALOG),
                         GRAPH, catalog=CATALOG)
    assert ranked[0].confidence > ranked[1].confidence and 0 < sum(c.confidence for c in ranked) <= 1.0001
