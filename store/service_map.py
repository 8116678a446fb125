"""The service graph as ``GET /services/graph`` shows it: the catalog's declared
``depends_on``, the caller -> callee calls spans showed (``service_edges``), the services
each service's log records named, and the services seen on each host (the mentions and
placement each correlation scope's graph learned, ``correlation_models.graph``), every
edge with where it came from and when it was last seen. Names the catalog knows as
aliases are shown under the entry's own name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from triage.models.catalog import Catalog
from triage.models.topology import host_node
from triage.store.graph import load_edges
from triage.store.schema import correlation_models

DECLARED, TRACES, LOGS, PLACEMENT = "declared", "traces", "logs", "placement"
DEPENDS_ON, RUNS_ON = "depends_on", "runs_on"


@dataclass(frozen=True)
class EdgeSource:
    source: str                    # declared | traces | logs | placement
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    count: int | None = None       # calls, for traces


@dataclass(frozen=True)
class GraphEdge:
    source: str        # the dependent: a service
    target: str        # what it depends on: a service, a datastore, or host:<name>
    relation: str      # depends_on | runs_on
    sources: tuple[EdgeSource, ...]

    @property
    def last_seen(self) -> datetime | None:
        return max((s.last_seen for s in self.sources if s.last_seen is not None), default=None)


@dataclass(frozen=True)
class GraphNode:
    id: str
    kind: str          # service | datastore | platform (the catalog's), host, unknown
    team: str | None
    in_catalog: bool


@dataclass(frozen=True)
class ServiceMap:
    nodes: list[GraphNode]
    edges: list[GraphEdge]


def _graphs(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every scope's learned graph (``ServiceGraph.snapshot``)."""
    with engine.connect() as conn:
        graphs = [row.graph for row in conn.execute(sa.select(correlation_models.c.graph))]
    return [g for g in graphs if isinstance(g, dict)]


def _mentions(graphs: list[dict[str, Any]]) -> Iterable[tuple[str, str, datetime]]:
    """(service, the service its records named, last seen) from the learned graphs."""
    for graph in graphs:
        for item in graph.get("mentions", []):
            if isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) and isinstance(item[1], str):
                yield item[0], item[1], datetime.fromtimestamp(float(item[2]), timezone.utc)


def _placements(graphs: list[dict[str, Any]]) -> Iterable[tuple[str, str, datetime]]:
    """(service, host, last seen) from the learned graphs."""
    prefix = host_node("")
    for graph in graphs:
        for item in graph.get("edges", []):
            if not isinstance(item, list) or len(item) != 4:
                continue
            a, b, source, seen = item
            if source != "learned" or not isinstance(a, str) or not isinstance(b, str) \
                    or a.startswith(prefix) == b.startswith(prefix):
                continue
            service, host = (b, a) if a.startswith(prefix) else (a, b)
            yield service, host[len(prefix):], datetime.fromtimestamp(float(seen), timezone.utc)


def load_service_map(engine: sa.Engine, catalog: Catalog) -> ServiceMap:
    def name(raw: str) -> str:
        entry = catalog.service(raw)
        return entry.name if entry is not None else raw

    found: dict[tuple[str, str, str], dict[str, EdgeSource]] = {}

    def add(a: str, b: str, relation: str, src: EdgeSource) -> None:
        if a == b:
            return
        sources = found.setdefault((a, b, relation), {})
        old = sources.get(src.source)
        if old is not None:   # two names of one entry, or two scopes: widen the span seen
            src = EdgeSource(src.source, _min(old.first_seen, src.first_seen), _max(old.last_seen, src.last_seen),
                             None if old.count is None or src.count is None else old.count + src.count)
        sources[src.source] = src

    for entry in catalog.services.values():
        for dep in entry.depends_on:
            add(entry.name, name(dep), DEPENDS_ON, EdgeSource(DECLARED))
    for edge in load_edges(engine):
        add(name(edge.caller), name(edge.callee), DEPENDS_ON,
            EdgeSource(TRACES, edge.first_seen, edge.last_seen, edge.count))
    graphs = _graphs(engine)
    for service, named, seen in _mentions(graphs):
        add(name(service), name(named), DEPENDS_ON, EdgeSource(LOGS, last_seen=seen))
    for service, host, seen in _placements(graphs):
        add(name(service), host_node(host), RUNS_ON, EdgeSource(PLACEMENT, last_seen=seen))

    order = (DECLARED, TRACES, LOGS, PLACEMENT)
    edges = [GraphEdge(a, b, relation, tuple(sorted(srcs.values(), key=lambda s: order.index(s.source))))
             for (a, b, relation), srcs in sorted(found.items())]
    ids = sorted({*catalog.services, *(e.source for e in edges), *(e.target for e in edges)})
    nodes = []
    for node in ids:
        known = catalog.services.get(node)
        if known is not None:
            nodes.append(GraphNode(node, known.kind.value, known.team, True))
        else:
            nodes.append(GraphNode(node, "host" if node.startswith(host_node("")) else "unknown", None, False))
    return ServiceMap(nodes, edges)


def _min(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _max(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)
