"""Which catalog entry an event is about: ordered mapping rules, the first that names an
entry wins.

Events name their component in many ways: the event's ``service`` field, a label
(``service``, Kubernetes' ``app``, Prometheus' ``job``, OpenTelemetry's
``k8s.deployment.name``, the recommended ``app.kubernetes.io/name``), or only a host,
whose services the service graph has learned from the stream (``placement``). A rule
takes one such value and looks it up among the catalog's names and aliases; ``placement``
names an entry only when exactly one catalog entry was seen on the host; ``platform``
gives a host-only event (a node NotReady) to the catalog's platform entry.

``TRIAGE_CATALOG_MAPPING`` orders them (``parse_rules``); the default is
``DEFAULT_RULES``. Pure functions, for the pipeline and ``triage eval`` alike. The
pipeline does not call them yet: the entry and rule an event maps to belong with its
membership (the row ``SqlStore._write`` writes with the decision's rule and evidence),
with the placement taken from the scope's graph (``placement_from_graph``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from triage.domain.event import Event
from triage.models.catalog import Catalog, ComponentKind, ServiceEntry
from triage.models.topology import ServiceGraph, host_node

__all__ = ["DEFAULT_RULES", "MappingRule", "RuleKind", "parse_rules", "placement_from_graph", "resolve_component"]


class RuleKind(str, Enum):
    service = "service"      # the event's own ``service`` field
    label = "label"          # a label's value
    placement = "placement"  # the one catalog entry seen on the event's host
    platform = "platform"    # the platform entry, for an event that names only a host


@dataclass(frozen=True)
class MappingRule:
    kind: RuleKind
    label: str | None = None   # for ``label`` rules

    @property
    def name(self) -> str:
        """How the rule is written in ``TRIAGE_CATALOG_MAPPING`` and recorded with a match."""
        return f"label:{self.label}" if self.kind is RuleKind.label else self.kind.value


DEFAULT_RULES: Final = (
    MappingRule(RuleKind.service),
    *(MappingRule(RuleKind.label, name)
      for name in ("service", "app", "job", "k8s.deployment.name", "app.kubernetes.io/name")),
    MappingRule(RuleKind.placement),
    MappingRule(RuleKind.platform),
)


def parse_rules(text: str) -> tuple[MappingRule, ...]:
    """``service,label:app,label:job,placement,platform`` -> rules, in that order; empty
    text is ``DEFAULT_RULES``. ``ValueError`` names a rule it does not know."""
    rules: list[MappingRule] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part in ("service", "field"):
            rule = MappingRule(RuleKind.service)
        elif part.startswith("label:") and part[len("label:"):].strip():
            rule = MappingRule(RuleKind.label, part[len("label:"):].strip())
        elif part in (RuleKind.placement.value, RuleKind.platform.value):
            rule = MappingRule(RuleKind(part))
        else:
            raise ValueError(f"unknown mapping rule {part!r}: use service, label:<name>, placement or platform")
        if rule not in rules:
            rules.append(rule)
    return tuple(rules) or DEFAULT_RULES


def placement_from_graph(graph: ServiceGraph) -> dict[str, frozenset[str]]:
    """host -> the services the graph has seen on it (its ``host:`` edges)."""
    prefix = host_node("")
    placed: dict[str, set[str]] = {}
    for a, b, _source in graph.edges():
        if a.startswith(prefix) != b.startswith(prefix):
            host, service = (a, b) if a.startswith(prefix) else (b, a)
            placed.setdefault(host[len(prefix):], set()).add(service)
    return {host: frozenset(services) for host, services in placed.items()}


def _platform(catalog: Catalog) -> ServiceEntry | None:
    found = [e for e in catalog.services.values() if e.kind is ComponentKind.platform]
    return found[0] if len(found) == 1 else None


def resolve_component(event: Event, catalog: Catalog, rules: Iterable[MappingRule] = DEFAULT_RULES,
                      placement: Mapping[str, Collection[str]] | None = None) -> tuple[ServiceEntry, str] | None:
    """The catalog entry ``event`` is about and the name of the rule that found it
    (``service``, ``label:app``, ``placement``, …), or None when no rule names one."""
    for rule in rules:
        entry: ServiceEntry | None = None
        if rule.kind is RuleKind.service:
            entry = catalog.service(event.service)
        elif rule.kind is RuleKind.label:
            value = event.labels.get(rule.label or "")
            entry = catalog.service(value) if isinstance(value, str) else None
        elif rule.kind is RuleKind.placement:
            if event.host and placement:
                on_host = {e.name for s in placement.get(event.host, ()) if (e := catalog.service(s)) is not None}
                if len(on_host) == 1:
                    entry = catalog.services[on_host.pop()]
        elif rule.kind is RuleKind.platform:
            if event.host and not event.service:
                entry = _platform(catalog)
        if entry is not None:
            return entry, rule.name
    return None
