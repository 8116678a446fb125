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
  the host is a candidate, even before its own alert arrives.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from triage.domain.change import Change
from triage.domain.event import Event, EventKind, Status
from triage.models.catalog import Catalog, ComponentKind

__all__ = ["AlertClass", "CallGraph", "CauseCandidate", "CauseParameters", "ComponentType", "Signal",
           "classify_alert", "component_owner", "evidence_graph_edges", "rank_causes", "signals_from_events"]


class ComponentType(str, Enum):
    service = "service"
    datastore = "datastore"
    host = "host"
    cluster = "cluster"


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
    w_change: float = 0.6            # times exp(-(onset - change) / change_scale_s): the nearer, the more
    change_scale_s: float = 600.0
    change_window_s: float = 3600.0  # a change counts when at most this long before the onset
    top: int = 3


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
        if event.service:
            entry = catalog.service(event.service) if catalog is not None else None
            component = entry.name if entry is not None else event.service
            kind = ComponentType.datastore if entry is not None and entry.kind is ComponentKind.datastore \
                else ComponentType.service
            text = event.title[:300] if event.kind is EventKind.log else ""
            out.append(Signal(event.occurred_at, component, kind, alert, name, event.host, event.parent_service, text))
        elif alert is AlertClass.node:
            host = str(event.labels.get("node") or event.host)
            out.append(Signal(event.occurred_at, host, ComponentType.host, alert, name, host))
        elif alert is AlertClass.cluster:
            cluster = str(event.labels.get("cluster") or "cluster")
            out.append(Signal(event.occurred_at, cluster, ComponentType.cluster, alert, name))
        elif event.host:
            out.append(Signal(event.occurred_at, event.host, ComponentType.host, alert, name, event.host))
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
    count: int = 0


def rank_causes(signals: Sequence[Signal], graph: CallGraph | None = None,
                changes: Sequence[Change] = (), parameters: CauseParameters | None = None,
                catalog: Catalog | None = None) -> list[CauseCandidate]:
    """The components that may have started the incident ``signals`` describe, best first
    (at most ``parameters.top``)."""
    p = parameters or CauseParameters()
    graph = graph or CallGraph()
    if not signals:
        return []
    seen: dict[str, _Seen] = {}
    for s in sorted(signals, key=lambda s: (s.at, s.component)):
        entry = seen.get(s.component)
        if entry is None:
            entry = seen[s.component] = _Seen(s.type, s.at)
        entry.count += 1
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
        onset = math.exp(-lead / p.onset_scale_s)
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
    weights = [math.exp(2.0 * (s - top[0][0])) for s, _, _ in scored]
    total = sum(weights)
    return [CauseCandidate(component=c, type=seen[c].type, score=round(s, 3),
                           confidence=round(weights[i] / total, 3), first_seen=seen[c].first,
                           evidence=tuple(ev))
            for i, (s, c, ev) in enumerate(top)]


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
    if type in (ComponentType.host, ComponentType.cluster):
        platform = [e.name for e in catalog.services.values() if e.kind is ComponentKind.platform]
        return platform[0] if len(platform) == 1 else None
    return None


def evidence_graph_edges(events: Iterable[Event]) -> list[tuple[str, str]]:
    """caller -> callee edges of the spans among ``events``."""
    return [(e.parent_service, e.service) for e in events
            if e.kind is EventKind.span and e.parent_service and e.service]

