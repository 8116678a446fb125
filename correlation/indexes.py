"""The correlator's indexes of one scope's incidents, rebuilt from the state (never
stored): node -> incidents, the template centroid index, and graph distances, each
cached until what it was computed from changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

import numpy as np

from datetime import datetime

from triage.correlation.scoring import EventFit
from triage.correlation.state import IncidentState, ScopeModels
from triage.domain.event import Event, EventKind
from triage.models.index import CentroidIndex
from triage.models.topology import ServiceGraph

__all__ = ["GraphDistances", "ScopeIndex", "learn_graph"]


class ScopeIndex:
    """The correlator's caches for one scope: node -> incidents, and the centroid index."""

    def __init__(self, dim: int) -> None:
        self.by_node: dict[str, set[str]] = defaultdict(set)
        self.by_node_version = 0   # bumped on every change to by_node
        self.centroids = CentroidIndex(dim)
        self.members: set[str] = set()
        self.text_hits: dict[str, tuple[int, list[str]]] = {}
        # (node, template id) -> (versions it was computed at, candidate incident ids)
        self.candidates: dict[tuple[str, str], tuple[tuple[int, int, int], list[str]]] = {}
        # (node, template id, template text) -> the scoring context of that (node, template)
        self.fits: dict[tuple[str, str, str], EventFit] = {}

    def text_candidates(self, template_id: str, vector: np.ndarray, radius: float) -> list[str]:
        """Incidents whose centroid is within ``radius`` (cosine) of the template, cached
        per template until the index changes."""
        centroids = self.centroids
        cached = self.text_hits.get(template_id)
        if cached is not None and cached[0] == centroids.version:
            return cached[1]
        hits = [key for key, _ in centroids.within(vector, radius)]
        if len(self.text_hits) > 65536:
            self.text_hits.clear()
        self.text_hits[template_id] = (centroids.version, hits)
        return hits

    def drop(self, stale: Iterable[str]) -> None:
        """Forget these incidents."""
        gone = set(stale)
        for incident_id in gone:
            self.members.discard(incident_id)
            self.centroids.remove(incident_id)
        # By node, not by the incident's nodes: an adopted state may no longer hold it.
        for node in list(self.by_node):
            members = self.by_node[node]
            members -= gone
            if not members:
                del self.by_node[node]
        self.by_node_version += 1


class GraphDistances:
    """``graph.distance`` from a node to an incident's nodes, cached until the scope's
    graph changes shape or the incident gains a node (its nodes are only ever added,
    so their count tells): the same few services ask about the same incidents for
    every event."""

    def __init__(self, graph_of: Callable[[str], ServiceGraph], max_hops: int) -> None:
        self._graph_of = graph_of
        self._max_hops = max_hops
        self._cache: dict[tuple[str, str], tuple[tuple[int, int], tuple[int, str] | None]] = {}

    def distance(self, incident: IncidentState, node: str) -> tuple[int, str] | None:
        graph = self._graph_of(incident.scope)
        key = (incident.id, node)
        stamp = (graph.version, len(incident.nodes))
        hit = self._cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        found = graph.distance(node, incident.nodes, self._max_hops)
        if len(self._cache) > 65536:
            self._cache.clear()
        self._cache[key] = (stamp, found)
        return found


def learn_graph(models: ScopeModels, event: Event, now: datetime, topology: ServiceGraph | None,
                declared: set[int]) -> None:
    """What the event teaches the scope's service graph: a call (a span with its parent
    service), a placement (a service on a host), a service its log record or span names
    (``ServiceGraph.learn_mention``); and, once per scope (``declared``), the declared
    topology's edges."""
    graph = models.graph
    if topology is not None and id(models) not in declared:
        declared.add(id(models))
        for a, b, _ in topology.edges():
            if graph.declare(*((b, a) if topology.calls(b, a) else (a, b))):   # (edges() lists a pair by name)
                models.dirty = True
    ts = now.timestamp()
    changed = False
    if event.kind is EventKind.span and event.parent_service and event.service:
        changed |= graph.learn_call(event.parent_service, event.service, ts)
    if event.service and event.host:
        changed |= graph.learn_placement(event.service, event.host, ts)
    if event.service and event.kind is not EventKind.alert:
        # (an alert's title names its instance and the rule's subject, not a peer it calls)
        for name in graph.services_named_in(event.title):
            changed |= graph.learn_mention(event.service, name, ts)
    if changed:
        models.dirty = True
