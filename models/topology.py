"""The service graph: which components talk to (or run on) which, declared or learned.

Nodes are service names, and hosts as ``host:<name>``. Edges are undirected for
proximity (a fault travels to callers, its symptoms show on callees: both directions
relate two services) and carry where they came from:

* ``learned``: seen in the traffic. A span's ``parent_service`` -> ``service`` is a call;
  an event of a service on a host is that service running on that host. Learning is
  online and needs nothing but the events, so a deployment works without any file.
* ``mentioned``: a service's own log records or spans name another service of the graph
  ("... (calling redis-cart)", "dial tcp redis-cart:6379"): what a client says it talks
  to. A datastore sends no spans, so without a catalog this is how its callers reach it.
  Kept per direction too (``mentions``: who named whom, when last), for the service map.
* ``declared``: loaded from a topology export (``topology.json`` with ``calls``,
  ``uses`` and ``runs_on`` edges) or a service catalog (``services.yaml`` with
  ``depends_on``), when one is given. Optional.

Edges that have a direction keep it too (``callees``; ``calls(a, b)``): a span's parent
service calls its service, a declared ``calls``/``uses``/``depends_on`` edge runs from
the dependant, and a record naming a peer names a service it talks to. A fault spreads
from a callee to its callers (the correlator's onset rule reads the direction).

``proximity(node, nodes)`` is ``hop_decay ** hops`` to the nearest of ``nodes`` within
``max_hops`` (1 for a node in ``nodes``, 0 when none is reachable). Breadth-first
searches are cached per node until the graph changes. State is JSON
(``snapshot()``/``restore()``); ``version`` counts changes so a store can tell whether
its copy is current.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["ServiceGraph", "host_node", "host_zones"]

_FORMAT = "triage.service-graph"
_DECLARED_TYPES = frozenset({"calls", "uses", "runs_on", "depends_on"})
# The words of a record that may name a service (Kubernetes names: letters, digits, '-';
# "redis-cart:6379" and "cartservice.boutique.svc" name one).
_WORD_RE = re.compile(r"[A-Za-z0-9_-]+")
# An edge seen several ways keeps the surest source: declared, then seen in a span or a
# placement, then named in a log.
_SOURCE_RANK = {"mentioned": 0, "learned": 1, "declared": 2}


def host_node(host: str) -> str:
    return f"host:{host}"


_HOST_PREFIX = host_node("")


def host_zones(path: str | Path) -> dict[str, str]:
    """host -> availability zone, from a ``topology.json`` export: a host node's ``zone``,
    or its ``in_zone`` edge to a network node (that node's ``zone``, else its id). A
    ``services.yaml`` catalog places no host: empty."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        return {}
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    nodes = {str(n.get("id") or n.get("name")): n for n in data.get("nodes", []) if isinstance(n, dict)}
    zones = {name: str(n["zone"]) for name, n in nodes.items()
             if n.get("kind", n.get("type")) == "host" and n.get("zone")}
    for edge in data.get("edges", []):
        if isinstance(edge, dict) and edge.get("type") == "in_zone":
            host, target = str(edge["from"]), str(edge["to"])
            zones.setdefault(host, str(nodes.get(target, {}).get("zone") or target))
    return zones


class ServiceGraph:
    def __init__(self) -> None:
        # node -> neighbour -> (source, last seen epoch seconds)
        self._adj: dict[str, dict[str, tuple[str, float]]] = {}
        self._hops_cache: dict[tuple[str, int], dict[str, int]] = {}
        # (the service whose records named it, the service named) -> last seen epoch seconds
        self.mentions: dict[tuple[str, str], float] = {}
        self.callees: dict[str, set[str]] = {}   # caller -> the services it calls (or names)
        self._services: set[str] = set()   # the nodes that are not hosts
        self.version = 0

    # -- building ------------------------------------------------------------------

    def _add(self, a: str, b: str, source: str, seen: float) -> bool:
        """Add or refresh an edge; True when the graph's shape changed."""
        if a == b or not a or not b:
            return False
        current = self._adj.get(a, {}).get(b)
        if current is not None:
            # an edge keeps its surest source; refresh the time it was last seen
            kind = current[0]
            if source != kind and _SOURCE_RANK.get(source, 1) > _SOURCE_RANK.get(kind, 1):
                kind = source
            if seen > current[1] or kind != current[0]:
                self._adj[a][b] = self._adj[b][a] = (kind, max(seen, current[1]))
            return False
        self._adj.setdefault(a, {})[b] = (source, seen)
        self._adj.setdefault(b, {})[a] = (source, seen)
        self._services.update(n for n in (a, b) if not n.startswith(_HOST_PREFIX))
        self._hops_cache.clear()
        self.version += 1
        return True

    def learn_call(self, caller: str | None, callee: str | None, seen: float = 0.0) -> bool:
        """A span showed ``caller`` calling ``callee``."""
        if not caller or not callee or caller == callee:
            return False
        directed = self._direct(caller, callee)
        return self._add(caller, callee, "learned", seen) or directed

    def _direct(self, caller: str, callee: str) -> bool:
        """Record that ``caller`` calls ``callee``; True when that is new (a change to persist)."""
        callees = self.callees.setdefault(caller, set())
        if callee in callees:
            return False
        callees.add(callee)
        self.version += 1
        return True

    def learn_placement(self, service: str | None, host: str | None, seen: float = 0.0) -> bool:
        """An event showed ``service`` running on ``host``."""
        return bool(service and host) and self._add(service, host_node(host), "learned", seen)  # type: ignore[arg-type]

    def services_named_in(self, text: str) -> list[str]:
        """The services of this graph that ``text`` names as a word: a set look-up per
        word, whatever the number of services (a log record's title, per event)."""
        return sorted(self._services.intersection(_WORD_RE.findall(text)))

    def learn_mention(self, service: str, named: str, seen: float = 0.0) -> bool:
        """A record of ``service`` named ``named``, a node of this graph already (a service
        or datastore seen in the stream)."""
        if service == named or named not in self._adj:
            return False
        key = (service, named)
        directed = self._direct(service, named)
        if seen > self.mentions.get(key, -1.0):
            self.mentions[key] = seen
        return self._add(service, named, "mentioned", seen) or directed

    def declare(self, a: str, b: str) -> bool:
        """``a`` calls, uses or depends on ``b`` (or runs on the host node ``b``)."""
        directed = a != b and not b.startswith(_HOST_PREFIX) and self._direct(a, b)
        return self._add(a, b, "declared", 0.0) or directed

    @classmethod
    def from_topology(cls, path: str | Path) -> "ServiceGraph":
        """Edges from a ``topology.json`` (``{"edges": [{"from", "to", "type"}]}``) or a
        ``services.yaml`` catalog (``services: [{service, depends_on: [...]}]``)."""
        graph = cls()
        graph.load_declared(path)
        return graph

    def load_declared(self, path: str | Path) -> int:
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        added = 0
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data: Any = yaml.safe_load(text) or {}
            for entry in data.get("services", []) or []:
                name = entry.get("service")
                for dep in entry.get("depends_on", []) or []:
                    added += self.declare(str(name), str(dep))
            return added
        data = json.loads(text)
        hosts = {n.get("id") or n.get("name") for n in data.get("nodes", [])
                 if isinstance(n, dict) and n.get("kind", n.get("type")) == "host"}
        for edge in data.get("edges", []):
            if edge.get("type") not in _DECLARED_TYPES:
                continue
            a, b = str(edge["from"]), str(edge["to"])
            if edge.get("type") == "runs_on" or b in hosts:
                b = host_node(b)
            added += self.declare(a, b)
        return added

    # -- asking --------------------------------------------------------------------

    def __contains__(self, node: object) -> bool:
        return node in self._adj

    def neighbours(self, node: str) -> set[str]:
        return set(self._adj.get(node, ()))

    def calls(self, caller: str, callee: str) -> bool:
        """``caller`` was seen calling ``callee``, declared dependent on it, or named it."""
        return callee in self.callees.get(caller, ())

    def adjacent(self, a: str, b: str) -> bool:
        return b in self._adj.get(a, ())

    def edges(self) -> list[tuple[str, str, str]]:
        return sorted((a, b, src) for a, nbrs in self._adj.items() for b, (src, _) in nbrs.items() if a < b)

    def hops_from(self, node: str, max_hops: int) -> dict[str, int]:
        """Every node within ``max_hops`` of ``node`` and its distance (``node`` itself: 0)."""
        key = (node, max_hops)
        found = self._hops_cache.get(key)
        if found is None:
            found = {node: 0}
            queue = deque([node])
            while queue:
                current = queue.popleft()
                depth = found[current]
                if depth >= max_hops:
                    continue
                for nxt in self._adj.get(current, ()):
                    if nxt not in found:
                        found[nxt] = depth + 1
                        queue.append(nxt)
            if len(self._hops_cache) > 4096:
                self._hops_cache.clear()
            self._hops_cache[key] = found
        return found

    def distance(self, node: str, nodes: Iterable[str], max_hops: int) -> tuple[int, str] | None:
        """The hops to the nearest of ``nodes`` and which one it is (ties by name)."""
        reach = self.hops_from(node, max_hops)
        best: tuple[int, str] | None = None
        for other in nodes:
            hops = reach.get(other)
            if hops is not None and (best is None or (hops, other) < best):
                best = (hops, other)
        return best

    def proximity(self, node: str, nodes: Iterable[str], *, hop_decay: float, max_hops: int) -> float:
        found = self.distance(node, nodes, max_hops)
        return 0.0 if found is None else hop_decay ** found[0]

    # -- persistence ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {"format": _FORMAT, "version": self.version,
                "edges": [[a, b, src, self._adj[a][b][1]] for a, b, src in self.edges()],
                "mentions": [[a, b, seen] for (a, b), seen in sorted(self.mentions.items())],
                "calls": sorted([a, b] for a, callees in self.callees.items() for b in callees)}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("format") != _FORMAT:
            raise ValueError("not a service graph snapshot")
        self._adj.clear()
        self._hops_cache.clear()
        self.mentions = {(a, b): float(seen) for a, b, seen in state.get("mentions", [])}
        self.callees = {}
        # (a snapshot from before directions were kept has none: its mentions have one)
        for a, b in [*state.get("calls", []), *self.mentions]:
            self._direct(a, b)
        for a, b, src, seen in state.get("edges", []):
            self._adj.setdefault(a, {})[b] = (src, float(seen))
            self._adj.setdefault(b, {})[a] = (src, float(seen))
        self._services = {n for n in self._adj if not n.startswith(_HOST_PREFIX)}
        self.version = int(state.get("version", 0))

    @classmethod
    def from_snapshot(cls, state: dict[str, Any]) -> "ServiceGraph":
        graph = cls()
        graph.restore(state)
        return graph
