"""Probable cause: which component (a service, a datastore, a host, the cluster) may have
started an incident, ranked from what the stream shows, each with its evidence.

Input is what triage saw of the incident (its events, as ``Signal``s), the call graph
(``CallGraph``: the catalog's ``depends_on`` and the caller -> callee edges seen in spans)
and the changes recorded near it. Four kinds of evidence are weighed, each a term of
the score with its sentence:

* **onset**: when the component first showed trouble, against the incident's first
  sign. A fault starts somewhere and spreads to callers within minutes.
* **graph**: a component whose callers failed after it ("cartservice, which calls it,
  failed 40 s later") gains; one whose own callee failed first loses (it is more
  likely a victim of that callee).
* **alert kind**: a node alert (NotReady, disk pressure: host-level, no service), a
  cluster alert (no service and no host: DNS, the API server), a datastore alert and a
  component's own resource alert (OOM kill, crash loop, CPU, memory) say more about the
  cause than symptoms seen by callers (5xx rate, latency, a failed probe).
* **placement**: when several unrelated services fail on one host (and elsewhere less),
  the host is a candidate, even before its own alert arrives; and a node alert that
  fires after the incident began counts for its host only when the incident's services
  show trouble on it too, or nowhere that the signals say (a host's fault shows on the
  pods it runs).
* **zone**: node alerts on several hosts of one availability zone (and fewer elsewhere)
  point at what those hosts share, the zone's network or power, above any one of them.
  Zones come from the topology export (``TRIAGE_TOPOLOGY_FILE``) or the events' zone
  labels (``topology.kubernetes.io/zone``, OpenTelemetry's ``cloud.availability_zone``).
* **change**: a change to the component shortly before its onset. One term among the
  others, not a verdict: most changes are harmless, so a change alone never outranks a
  component that failed first or that the graph points at.

``rank_causes`` returns the candidates best first, each with a score, a confidence
(its share of the positive scores, a softmax over the ranked candidates) and its
evidence sentences. Pure: time is in the signals, nothing is read from a clock.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from triage.domain.change import Change
from triage.domain.event import Event, EventKind, Status
from triage.models.catalog import Catalog, ComponentKind

__all__ = ["AlertClass", "CallGraph", "CauseCandidate", "CauseParameters", "ComponentType", "Signal",
           "ZONE_LABELS", "classify_alert", "component_owner", "evidence_graph_edges", "rank_causes", "signals_from_events"]


class ComponentType(str, Enum):
    service = "service"
    datastore = "datastore"
    host = "host"
    cluster = "cluster"
    zone = "zone"


# Labels that name a host's availability zone (Kubernetes node labels as kube-state-metrics
# and Prometheus relabelling pass them on, OpenTelemetry's resource attribute, Datadog's tag).
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone",
               "label_topology_kubernetes_io_zone", "cloud.availability_zone", "availability-zone",
               "availability_zone", "zone")


class AlertClass(str, Enum):
    """What an alert says about the component it names."""

    node = "node"            # a host-level alert (no service): NotReady, disk, memory pressure
    cluster = "cluster"      # neither service nor host: DNS, the API server, certificates
    datastore = "datastore"  # an alert on a datastore (Redis down, connections, memory)
    resource = "resource"    # the component's own resources: OOM kill, crash loop, CPU, memory
    symptom = "symptom"      # what callers and probes see: error rate, latency, probe failed
    none = "none"            # not an alert (a log record, a span)


# Words of an alert's name or title that speak of the component's own resources.
_RESOURCE = re.compile(r"oom|memory|heap|cpu|throttl|crash|restart|killed|disk|filesystem|evict|goroutine",
                       re.IGNORECASE)


@dataclass(frozen=True)
class Signal:
    """One sign of trouble: an event of the incident, reduced to what the ranking reads."""

    at: datetime
    component: str
    type: ComponentType
    alert: AlertClass = AlertClass.none
    name: str = ""              # the alert's name or the event's title, for the evidence
    host: str | None = None     # where it was seen (a service's pod on a node)
    caller: str | None = None   # for a span: the service that called ``component``
    text: str = ""              # a log record's message: it may name the callee that failed
    zone: str | None = None     # the availability zone of ``host``, when the event's labels name it


@dataclass
class CallGraph:
    """caller -> callees (declared ``depends_on`` and calls seen in spans)."""

    callees: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, catalog: Catalog | None = None, edges: Iterable[tuple[str, str]] = ()) -> "CallGraph":
        graph = cls()
        if catalog is not None:
            for entry in catalog.services.values():
                for callee in entry.depends_on:
                    graph.add(entry.name, callee)
        for caller, callee in edges:
            graph.add(caller, callee)
        return graph

    def add(self, caller: str, callee: str) -> None:
        if caller and callee and caller != callee:
            self.callees.setdefault(caller, set()).add(callee)

    def callers_of(self, component: str) -> set[str]:
        return {caller for caller, callees in self.callees.items() if component in callees}


@dataclass(frozen=True)
class CauseParameters:
    """The weights of the evidence; one set for every stream (nothing here is fitted)."""

    onset_scale_s: float = 120.0     # onset term: exp(-(onset - first sign) / scale)
    slack_s: float = 30.0            # "before"/"after" need this much time between onsets
    w_onset: float = 1.0
    w_alert_onset: float = 0.8       # the same, for its first alert against the incident's first alert
    w_callers_after: float = 0.6     # callers that failed after it
    w_callee_first: float = 1.0      # a callee of it failed first (subtracted)
    w_node_alert: float = 1.6
    w_cluster_alert: float = 1.6
    w_datastore_alert: float = 0.9
    w_resource_alert: float = 0.5
    w_named: float = 1.0             # a datastore its callers' errors name ("Redis timeout" -> redis-cart);
                                     # the callers naming it lose as much
    w_placement: float = 1.2         # several services failing on one host, mostly there
    placement_min_services: int = 3
    w_zone: float = 0.8              # times the share of the zone's hosts with a node alert
    zone_min_hosts: int = 2
    zone_window_s: float = 300.0     # other incidents' node alerts this near its start count for a zone
    w_ongoing: float = 1.6           # another incident's node alert already firing on a host it fails on
    w_change: float = 0.6            # times exp(-(onset - change) / change_scale_s): the nearer, the more
    change_scale_s: float = 600.0
    change_window_s: float = 3600.0  # a change counts when at most this long before the onset
    top: int = 3
    sharpness: float = 2.0           # confidence: softmax of sharpness x score over the candidates


@dataclass(frozen=True)
class CauseCandidate:
    component: str
    type: ComponentType
    score: float
    confidence: float
    first_seen: datetime
    evidence: tuple[str, ...]


def classify_alert(event: Event, catalog: Catalog | None = None) -> AlertClass:
    if event.kind is not EventKind.alert:
        return AlertClass.none
    if not event.service:
        return AlertClass.node if event.host or event.labels.get("node") else AlertClass.cluster
    entry = catalog.service(event.service) if catalog is not None else None
    if entry is not None and entry.kind is ComponentKind.datastore:
        return AlertClass.datastore
    name = str(event.labels.get("alertname") or event.title)
    return AlertClass.resource if _RESOURCE.search(name) else AlertClass.symptom


def signals_from_events(events: Iterable[Event], catalog: Catalog | None = None) -> list[Signal]:
    """The signs of trouble among ``events``: firing alerts, logs and spans (a resolve says
    something ended, not that it started). A service-less alert names its host (the
    ``node`` label or the event's host) or else the cluster (the ``cluster`` label)."""
    out: list[Signal] = []
    for event in events:
        if event.status is not Status.firing:
            continue
        alert = classify_alert(event, catalog)
        name = str(event.labels.get("alertname") or event.title)[:120]
        zone = next((str(z) for key in ZONE_LABELS if (z := event.labels.get(key))), None)
        if event.service:
            entry = catalog.service(event.service) if catalog is not None else None
            component = entry.name if entry is not None else event.service
            kind = ComponentType.datastore if entry is not None and entry.kind is ComponentKind.datastore \
                else ComponentType.service
            text = event.title[:300] if event.kind is EventKind.log else ""
            out.append(Signal(event.occurred_at, component, kind, alert, name, event.host, event.parent_service, text,
                              zone))
        elif alert is AlertClass.node:
            host = str(event.labels.get("node") or event.host)
            out.append(Signal(event.occurred_at, host, ComponentType.host, alert, name, host, zone=zone))
        elif alert is AlertClass.cluster:
            cluster = str(event.labels.get("cluster") or "cluster")
            out.append(Signal(event.occurred_at, cluster, ComponentType.cluster, alert, name))
        elif event.host:
            out.append(Signal(event.occurred_at, event.host, ComponentType.host, alert, name, event.host, zone=zone))
    return sorted(out, key=lambda s: (s.at, s.component))


def _ago(seconds: float) -> str:
    seconds = abs(seconds)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


@dataclass
class _Seen:
    type: ComponentType
    first: datetime
    alerts: dict[AlertClass, str] = field(default_factory=dict)   # class -> first alert's name
    first_alert: datetime | None = None
    hosts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def rank_causes(signals: Sequence[Signal], graph: CallGraph | None = None,
                changes: Sequence[Change] = (), parameters: CauseParameters | None = None,
                catalog: Catalog | None = None, zones: Mapping[str, str] | None = None,
                ambient: Sequence[Signal] = (), cleared: Mapping[str, datetime] | None = None) -> list[CauseCandidate]:
    """The components that may have started the incident ``signals`` describe, best first
    (at most ``parameters.top``). ``zones``: host -> availability zone, as declared;
    ``ambient``: the host and cluster alerts of other incidents firing around it
    (``platform_signals``); ``cleared``: host -> when its node alerts among the incident's
    events had all resolved while its service alerts went on firing (``cleared_hosts``)."""
    p = parameters or CauseParameters()
    graph = graph or CallGraph()
    if not signals:
        return []
    seen: dict[str, _Seen] = {}
    for s in sorted(signals, key=lambda s: (s.at, s.component)):
        entry = seen.get(s.component)
        if entry is None:
            entry = seen[s.component] = _Seen(s.type, s.at)
        if s.alert is not AlertClass.none:
            entry.alerts.setdefault(s.alert, s.name)
            if entry.first_alert is None:
                entry.first_alert = s.at
        if s.host and s.type in (ComponentType.service, ComponentType.datastore):
            entry.hosts[s.host] += 1
    start = min(e.first for e in seen.values())
    alerted = [e.first_alert for e in seen.values() if e.first_alert is not None]
    first_alert = min(alerted) if alerted else None
    services = {c for c, e in seen.items() if e.type in (ComponentType.service, ComponentType.datastore)}

    # Hosts where several services failed: a candidate even before the host's own alert.
    on_host: dict[str, set[str]] = defaultdict(set)
    host_first: dict[str, datetime] = {}
    for s in signals:
        if s.host and s.type in (ComponentType.service, ComponentType.datastore):
            on_host[s.host].add(s.component)
            host_first[s.host] = min(host_first.get(s.host, s.at), s.at)
    for host, there in on_host.items():
        if len(there) >= p.placement_min_services and host not in seen:
            seen[host] = _Seen(ComponentType.host, host_first[host])

    ongoing = _ongoing_conditions(signals, ambient, seen, on_host, start)
    zone_hosts = _zone_candidates(signals, seen, zones or {}, p, ambient, start)

    # Datastores named in their callers' error messages: a datastore sends no spans and
    # may fail before (or without) an alert of its own; its clients say so.
    named: dict[str, tuple[datetime, str]] = {}
    datastores = {e.name for e in catalog.services.values() if e.kind is ComponentKind.datastore} \
        if catalog is not None else set()
    # (a caller with a resource alert of its own is its own suspect: its errors accuse nobody)
    strained = {s.component for s in signals if s.alert is AlertClass.resource}
    for s in signals:
        if not s.text or s.component in strained:
            continue
        lowered = s.text.lower()
        for callee in graph.callees.get(s.component, set()) & datastores:
            tokens = [t for t in {callee, *callee.split("-")} if len(t) >= 4 and t not in s.component]
            if any(t in lowered for t in tokens) and (callee not in named or s.at < named[callee][0]):
                named[callee] = (s.at, s.component)
    for callee, (at, _caller) in named.items():
        if callee not in seen:
            seen[callee] = _Seen(ComponentType.datastore, at)
            services.add(callee)

    scored: list[tuple[float, str, list[str]]] = []
    for component, e in seen.items():
        score, evidence = 0.0, []
        lead = (e.first - start).total_seconds()
        onset = math.exp(-max(0.0, lead) / p.onset_scale_s)
        score += p.w_onset * onset
        evidence.append("first sign of the incident" if lead <= 0 else f"first sign {_ago(lead)} after the incident's first")
        if e.first_alert is not None and first_alert is not None:
            alert_lead = (e.first_alert - first_alert).total_seconds()
            score += p.w_alert_onset * math.exp(-alert_lead / p.onset_scale_s)
            if alert_lead <= 0:
                evidence.append("its alert was the incident's first")
        if component in services:
            later = sorted(c for c in graph.callers_of(component) & services
                           if (seen[c].first - e.first).total_seconds() >= -p.slack_s and c != component)
            if later:
                score += p.w_callers_after * min(1.0, len(later) / 2)
                first_caller = min(later, key=lambda c: seen[c].first)
                gap = (seen[first_caller].first - e.first).total_seconds()
                evidence.append(f"first error {_ago(gap)} before {first_caller}, which calls it"
                                if gap > 0 else f"{first_caller}, which calls it, failed with it")
            earlier = sorted(c for c in graph.callees.get(component, set()) & services
                             if (e.first - seen[c].first).total_seconds() > p.slack_s)
            if earlier:
                score -= p.w_callee_first
                evidence.append(f"its callee {earlier[0]} failed {_ago((e.first - seen[earlier[0]].first).total_seconds())} before it")
        for cls, weight, text in ((AlertClass.node, p.w_node_alert, "node alert"),
                                  (AlertClass.cluster, p.w_cluster_alert, "cluster alert"),
                                  (AlertClass.datastore, p.w_datastore_alert, "datastore alert"),
                                  (AlertClass.resource, p.w_resource_alert, "resource alert")):
            if cls in e.alerts:
                if (cls is AlertClass.node and e.type is ComponentType.host and lead > p.slack_s and on_host
                        and component not in on_host):
                    # A host's fault shows on the pods it runs. Its alert came after the
                    # incident had begun, and the incident's services fail on other hosts
                    # and on none of this one: it fired beside the incident, not under it
                    # (it stays a candidate, on its timing). A node that fails first may
                    # send nothing of its own (a dead node ships no logs): not this rule.
                    evidence.append(f"{text} {e.alerts[cls]}, but none of the incident's failing services "
                                    f"shows trouble on it")
                    continue
                ended = (cleared or {}).get(component) if cls is AlertClass.node else None
                if ended is not None:
                    # A cause outlasts its effects: this node's alert fired and cleared
                    # while the incident's service alerts went on firing, so it fired
                    # beside them (a spike), not under them. A node's real fault fires
                    # until it is mended. It stays a candidate on its timing.
                    evidence.append(f"{text} {e.alerts[cls]}, but it cleared {_ago((ended - e.first).total_seconds())} "
                                    f"after its first sign while the incident's service alerts went on firing")
                    continue
                score += weight
                evidence.append(f"{text} {e.alerts[cls]}")
        if component in named:
            score += p.w_named
            evidence.append(f"named in the errors of {named[component][1]}, which calls it")
        blamed = sorted(c for c, (_, caller) in named.items() if caller == component)
        if blamed:
            score -= p.w_named
            evidence.append(f"its errors name its callee {blamed[0]}")
        if e.type is ComponentType.host and component in on_host:
            # services whose trouble shows mostly on this host (a service's own fault shows
            # on all its replicas' hosts; a host's fault on the pods it runs)
            mostly = sorted(c for c in on_host[component] if seen[c].hosts and
                            seen[c].hosts.get(component, 0) / sum(seen[c].hosts.values()) >= 0.5)
            if len(mostly) >= p.placement_min_services:
                score += p.w_placement * len(mostly) / len(on_host[component])
                evidence.append(f"{len(mostly)} services failing mostly on it ({', '.join(mostly[:4])}"
                                f"{', …' if len(mostly) > 4 else ''})")
        if component in ongoing:
            condition = ongoing[component]
            score += p.w_ongoing
            failing = sorted(on_host[component])
            evidence.append(f"node alert {condition.name} firing on it since {_ago((start - condition.at).total_seconds())} "
                            f"before the incident's first sign; {', '.join(failing[:3])}{', …' if len(failing) > 3 else ''} "
                            f"fail{'s' if len(failing) == 1 else ''} on it")
        if component in zone_hosts:
            hosts, known = zone_hosts[component]
            score += p.w_zone * len(hosts) / max(known, len(hosts))
            evidence.append(f"node alerts on {len(hosts)} of its {max(known, len(hosts))} hosts ({', '.join(hosts[:3])}"
                            f"{', …' if len(hosts) > 3 else ''})")
        near = [c for c in changes if c.service and _same(c.service, component, catalog)
                and 0 <= (e.first - c.occurred_at).total_seconds() <= p.change_window_s]
        if near:
            change = max(near, key=lambda c: c.occurred_at)
            score += p.w_change * math.exp(-(e.first - change.occurred_at).total_seconds() / p.change_scale_s)
            evidence.append(f"changed {_ago((e.first - change.occurred_at).total_seconds())} before its first sign: "
                            f"{change.summary[:100]}")
        scored.append((score, component, evidence))
    scored.sort(key=lambda t: (-t[0], seen[t[1]].first, t[1]))
    top = scored[:p.top]
    weights = [math.exp(p.sharpness * (s - top[0][0])) for s, _, _ in scored]
    total = sum(weights)
    return [CauseCandidate(component=c, type=seen[c].type, score=round(s, 3),
                           confidence=round(weights[i] / total, 3), first_seen=seen[c].first,
                           evidence=tuple(ev))
            for i, (s, c, ev) in enumerate(top)]


# The resource a node alert speaks of, and the words of a service's own resource alert
# that a shortage of it causes (a node under memory pressure has its pods OOM-killed).
# I/O wait is the disk's, though the alert says CPU: the order of the checks decides.
_NODE_RESOURCE = (("memory", re.compile(r"memory|oom", re.IGNORECASE)),
                  ("disk", re.compile(r"disk|filesystem|inode|iowait", re.IGNORECASE)),
                  ("cpu", re.compile(r"cpu|load", re.IGNORECASE)))
_SHORTAGE_SIGNS = {"memory": re.compile(r"oom|memory|heap|killed|evict", re.IGNORECASE),
                   "disk": re.compile(r"disk|filesystem|evict", re.IGNORECASE),
                   "cpu": re.compile(r"cpu|throttl", re.IGNORECASE)}


def _node_resource(name: str) -> str | None:
    return next((resource for resource, words in _NODE_RESOURCE if words.search(name)), None)


def _ongoing_conditions(signals: Sequence[Signal], ambient: Sequence[Signal], seen: dict[str, _Seen],
                        on_host: Mapping[str, set[str]], start: datetime) -> dict[str, Signal]:
    """Adds to ``seen`` each host where another incident's node alert about a resource
    was already firing when this one began, and a service of this incident that fails on
    that host raised its own alert about the same resource (a node under memory pressure
    has its pods OOM-killed; the node's alert does not fire again for the next incident).
    A condition that explains nothing the incident shows is left out: most long-firing
    node alerts are unrelated. Returns host -> that alert."""
    own_alerts: dict[str, list[str]] = defaultdict(list)
    for s in signals:
        if s.alert is AlertClass.resource:
            own_alerts[s.component].append(s.name)
    out: dict[str, Signal] = {}
    for a in sorted(ambient, key=lambda a: (a.at, a.component)):
        resource = _node_resource(a.name)
        if resource is None or a.alert is not AlertClass.node or a.at > start or a.component not in on_host \
                or a.component in out:
            continue
        signs = _SHORTAGE_SIGNS[resource]
        if any(signs.search(name) for service in on_host[a.component] for name in own_alerts.get(service, ())):
            entry = seen.get(a.component)
            if entry is not None and AlertClass.node in entry.alerts:
                continue   # its own node alert says it already
            out[a.component] = a
            if entry is None:
                seen[a.component] = _Seen(ComponentType.host, a.at)
            else:
                entry.first = min(entry.first, a.at)
    return out


def _zone_candidates(signals: Sequence[Signal], seen: dict[str, _Seen], zones: Mapping[str, str],
                     p: CauseParameters, ambient: Sequence[Signal], start: datetime) -> dict[str, tuple[list[str], int]]:
    """Adds to ``seen`` the zone whose hosts raised node alerts together (at least
    ``zone_min_hosts`` of them, more than in every other zone together, one of them in
    this incident; the others may have gone to other incidents within ``zone_window_s``):
    a fault of one host stays on that host. Returns zone -> (its alerting hosts, its hosts
    known)."""
    placed = dict(zones)
    for s in (*signals, *ambient):
        if s.zone and s.host:
            placed.setdefault(s.host, s.zone)
    # (host, the node alert's name): a zone's fault shows the same symptom on its hosts
    own = {(host, e.alerts[AlertClass.node]) for host, e in seen.items()
           if e.type is ComponentType.host and AlertClass.node in e.alerts}
    near = {(a.component, a.name) for a in ambient if a.alert is AlertClass.node
            and abs((a.at - start).total_seconds()) <= p.zone_window_s}
    alerting: dict[tuple[str, str], set[str]] = defaultdict(set)
    for host, name in own | near:
        if host in placed:
            alerting[(placed[host], name)].add(host)
    if not alerting:
        return {}
    (zone, name), found = max(sorted(alerting.items()), key=lambda kv: len(kv[1]))
    hosts = sorted(found)
    elsewhere = len({h for (z, n), hs in alerting.items() if n == name and z != zone for h in hs})
    own_hosts = {h for h, _ in own}
    mine = sorted((h for h in hosts if h in own_hosts), key=lambda h: (seen[h].first, h))
    if len(hosts) < p.zone_min_hosts or len(hosts) <= elsewhere or not mine or zone in seen:
        return {}
    entry = seen[zone] = _Seen(ComponentType.zone, seen[mine[0]].first)
    entry.first_alert = min(t for h in mine if (t := seen[h].first_alert) is not None)
    entry.alerts[AlertClass.node] = seen[mine[0]].alerts[AlertClass.node]
    return {zone: (hosts, sum(1 for z in placed.values() if z == zone))}


def _same(name: str, component: str, catalog: Catalog | None) -> bool:
    if name == component:
        return True
    entry = catalog.service(name) if catalog is not None else None
    return entry is not None and entry.name == component


def component_owner(component: str, type: ComponentType, catalog: Catalog) -> str | None:
    """The catalog entry answering for a component: itself, or the platform entry for a
    host or the cluster."""
    entry = catalog.service(component)
    if entry is not None:
        return entry.name
    if type in (ComponentType.host, ComponentType.cluster, ComponentType.zone):
        platform = [e.name for e in catalog.services.values() if e.kind is ComponentKind.platform]
        return platform[0] if len(platform) == 1 else None
    return None


def evidence_graph_edges(events: Iterable[Event]) -> list[tuple[str, str]]:
    """caller -> callee edges of the spans among ``events``."""
    return [(e.parent_service, e.service) for e in events
            if e.kind is EventKind.span and e.parent_service and e.service]

