"""Probable cause: onset, the graph, alert kinds, placement and changes, each with its evidence."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tests.conftest import T0, make_event
from triage.domain.change import Change, ChangeKind
from triage.domain.event import Event
from triage.models.catalog import Catalog
from triage.models.probable_cause import (AlertClass, CallGraph, ComponentType, classify_alert, component_owner,
                                          rank_causes, signals_from_events)
from triage.models.topology import host_zones
from triage.models.triage_context import cleared_hosts, platform_signals

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


def test_a_node_alert_on_a_host_where_none_of_the_failing_services_runs_is_a_bystander() -> None:
    # checkoutservice fails on node-a and node-b; node-c's CPU alert fires a minute in,
    # but nothing of the incident shows on node-c
    events = [log(0, "checkoutservice", "request timed out", host="node-a"),
              alert(20, "checkoutservice", "IstioHighRequestLatency", host="node-a"),
              log(30, "checkoutservice", "request timed out", host="node-b"),
              alert(60, None, "HostHighCpuLoad", host="node-c", node="node-c")]
    ranked = rank(events)
    assert ranked[0][0] == "checkoutservice"
    evidence = dict(ranked)["node-c"]
    assert "node alert HostHighCpuLoad, but none of the incident's failing services shows trouble on it" in evidence
    # the same alert where the failing service runs is the node's own evidence, as before
    on_it = [log(0, "checkoutservice", "request timed out", host="node-c"),
             alert(20, "checkoutservice", "IstioHighRequestLatency", host="node-c"), events[3]]
    assert rank(on_it)[0][0] == "node-c"
    # where the signals name no host at all, nothing says the node is a bystander
    unplaced = [log(0, "checkoutservice", "request timed out"),
                alert(20, "checkoutservice", "IstioHighRequestLatency"), events[3]]
    assert rank(unplaced)[0][0] == "node-c"
    # nor when the node's alert is the incident's first sign: a dead node ships nothing
    # of its own, and its callers' errors come from the other hosts
    first = [alert(0, None, "KubernetesNodeNotReady", host="node-c", node="node-c"), *events[:3]]
    [(cause, evidence), *_] = rank(first)
    assert cause == "node-c" and "node alert KubernetesNodeNotReady" in evidence


def test_a_node_alert_that_cleared_while_the_service_alerts_went_on_firing_fired_beside_them() -> None:
    # adservice fails on node-c; node-c's CPU alert fires 30 s in and clears 5 min later,
    # while adservice's alert still fires: the trouble outlived it
    events = [log(0, "adservice", "connection refused", host="node-c"),
              alert(30, None, "HostHighCpuLoad", host="node-c", node="node-c"),
              alert(60, "adservice", "KubernetesPodCrashLooping", host="node-c"),
              make_event(330, service=None, host="node-c", title="HostHighCpuLoad", status="resolved",
                         labels={"alertname": "HostHighCpuLoad", "node": "node-c"})]
    cleared = cleared_hosts(events)
    assert cleared == {"node-c": T0 + timedelta(seconds=330)}
    ranked = rank_causes(signals_from_events(events, CATALOG), GRAPH, catalog=CATALOG, cleared=cleared)
    assert ranked[0].component == "adservice"
    evidence = next(c.evidence for c in ranked if c.component == "node-c")
    assert ("node alert HostHighCpuLoad, but it cleared 5 min after its first sign while the incident's "
            "service alerts went on firing") in evidence
    # still firing, or cleared after the service's alert had cleared too, it counts
    assert rank(events[:3])[0][0] == "node-c"
    service_resolved = make_event(300, service="adservice", host="node-c", title="KubernetesPodCrashLooping",
                                  status="resolved", labels={"alertname": "KubernetesPodCrashLooping"})
    assert cleared_hosts([*events, service_resolved]) == {}


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


def node_alert(seconds: float, name: str, host: str, **fields: str) -> Event:
    return make_event(seconds, service=None, host=host, title=name, labels={"alertname": name, "node": host}, **fields)


ZONES = {"node-a": "zone-1", "node-b": "zone-1", "node-c": "zone-2"}


def rank_with(events: list[Event], others: list[Event], zones: dict[str, str] | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """Ranked with the host alerts of other incidents (``others``) as the platform around it."""
    start = min(e.occurred_at for e in events)
    now = start + timedelta(minutes=5)
    ambient = platform_signals(others, events, start=start, now=now)
    ranked = rank_causes(signals_from_events(events, CATALOG), GRAPH, [], catalog=CATALOG,
                         zones=zones or {}, ambient=ambient)
    return [(c.component, c.evidence) for c in ranked]


def test_the_same_node_alert_on_the_hosts_of_one_zone_names_the_zone_above_each_host() -> None:
    mine = [alert(0, None, "HostNetworkReceiveErrors", host="node-a"), log(20, "cartservice", "timeout", host="node-c")]
    other = [alert(50, None, "HostNetworkReceiveErrors", host="node-b")]   # went to another incident
    [(first, evidence), (second, _), *_] = rank_with(mine, other, ZONES)
    assert (first, second) == ("zone-1", "node-a")
    assert "node alerts on 2 of its 2 hosts (node-a, node-b)" in evidence
    # a different symptom on the zone's other host, or the same one in every zone, is no zone fault
    assert rank_with(mine, [alert(50, None, "HostHighCpuLoad", host="node-b")], ZONES)[0][0] == "node-a"
    spread = [alert(50, None, "HostNetworkReceiveErrors", host="node-b"),
              alert(55, None, "HostNetworkReceiveErrors", host="node-c"),
              alert(56, None, "HostNetworkReceiveErrors", host="node-d")]
    assert rank_with(mine, spread, {**ZONES, "node-d": "zone-3"})[0][0] == "node-a"
    # zones may come from the events' labels instead of a topology file
    labelled = [alert(0, None, "HostNetworkReceiveErrors", host="node-a", **{"topology.kubernetes.io/zone": "z9"}),
                log(20, "cartservice", "timeout", host="node-c")]
    other = [alert(50, None, "HostNetworkReceiveErrors", host="node-b", **{"topology.kubernetes.io/zone": "z9"})]
    assert rank_with(labelled, other)[0][0] == "z9"
    assert component_owner("z9", ComponentType.zone, CATALOG) == "platform"


def test_a_node_already_short_of_what_the_incidents_service_lacks_is_a_suspect_other_conditions_are_not() -> None:
    mine = [log(0, "cartservice", "connection reset", host="node-a"), log(5, "cartservice", "timeout", host="node-b"),
            alert(30, "cartservice", "KubernetesContainerOomKiller", host="node-b")]
    pressure = [alert(-300, None, "KubernetesNodeMemoryPressure", host="node-a", node="node-a")]
    [(first, evidence), (second, _), *_] = rank_with(mine, pressure)
    assert (first, second) == ("node-a", "cartservice")
    assert any(e.startswith("node alert KubernetesNodeMemoryPressure firing on it since 5 min before") for e in evidence)
    # a disk filling up explains no OOM kill; a pressure that ended before the incident explains nothing
    assert rank_with(mine, [alert(-300, None, "HostDiskMayFillIn24Hours", host="node-a")])[0][0] == "cartservice"
    ended = [*pressure, node_alert(-10, "KubernetesNodeMemoryPressure", "node-a", status="resolved")]
    assert rank_with(mine, ended)[0][0] == "cartservice"
    # nor does one on a host where none of the incident's services run
    elsewhere = [alert(-300, None, "KubernetesNodeMemoryPressure", host="node-z", node="node-z")]
    assert all(c != "node-z" for c, _ in rank_with(mine, elsewhere))


def test_platform_signals_are_other_incidents_host_alert_episodes_firing_around_it() -> None:
    own = [node_alert(0, "KubernetesNodeNotReady", "node-a", fingerprint="f-own")]
    others = [node_alert(-600, "HostOutOfMemory", "node-b", fingerprint="f1"),
              node_alert(-300, "HostOutOfMemory", "node-b", fingerprint="f1"),          # a re-notification
              node_alert(-500, "HostHighCpuLoad", "node-c", fingerprint="f2"),
              node_alert(-100, "HostHighCpuLoad", "node-c", fingerprint="f2", status="resolved"),
              alert(-400, "cartservice", "KubernetesPodCrashLooping", host="node-c"),           # a service's
              node_alert(-50, "KubernetesNodeNotReady", "node-a", fingerprint="f-own"),   # this incident's
              node_alert(900, "HostClockSkew", "node-d", fingerprint="f3")]               # after now
    found = platform_signals(others, own, start=T0, now=T0 + timedelta(seconds=600))
    assert [(s.component, s.name, s.at) for s in found] == [("node-b", "HostOutOfMemory", T0 - timedelta(seconds=600))]


def test_host_zones_come_from_a_topology_exports_host_nodes_and_in_zone_edges(tmp_path: Path) -> None:
    topology = tmp_path / "topology.json"
    topology.write_text(json.dumps({
        "nodes": [{"id": "node-a", "type": "host", "zone": "eu-b"}, {"id": "node-b", "type": "host"},
                  {"id": "net-eu-c", "type": "network", "zone": "eu-c"}, {"id": "node-c", "type": "host"}],
        "edges": [{"from": "node-b", "to": "net-eu-c", "type": "in_zone"},
                  {"from": "node-c", "to": "eu-d", "type": "in_zone"},
                  {"from": "cartservice", "to": "node-a", "type": "runs_on"}]}))
    assert host_zones(topology) == {"node-a": "eu-b", "node-b": "eu-c", "node-c": "eu-d"}
    catalog = tmp_path / "services.yaml"
    catalog.write_text("services: []\n")
    assert host_zones(catalog) == {}
