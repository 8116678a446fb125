"""Events to catalog entries: ordered rules, the first that names an entry wins."""

from __future__ import annotations

import pytest

from tests.conftest import make_event
from triage.models.catalog import Catalog, ComponentKind, ServiceEntry
from triage.models.mapping import (
    DEFAULT_RULES, MappingRule, RuleKind, parse_rules, placement_from_graph, resolve_component,
)
from triage.models.topology import ServiceGraph

CATALOG = Catalog.of([ServiceEntry("cartservice", aliases=("cart",)), ServiceEntry("redis-cart", ComponentKind.datastore),
                      ServiceEntry("frontend"), ServiceEntry("platform", ComponentKind.platform)])


def names(found: tuple[ServiceEntry, str] | None) -> tuple[str, str] | None:
    return None if found is None else (found[0].name, found[1])


@pytest.mark.parametrize("fields,expected", [
    ({"service": "cartservice"}, ("cartservice", "service")),
    ({"service": "cart"}, ("cartservice", "service")),                         # an alias
    ({"service": "unknown-svc", "labels": {"app": "frontend"}}, ("frontend", "label:app")),
    ({"service": None, "labels": {"job": "redis-cart"}}, ("redis-cart", "label:job")),
    ({"service": None, "labels": {"k8s.deployment.name": "frontend"}}, ("frontend", "label:k8s.deployment.name")),
    ({"service": None, "labels": {"app.kubernetes.io/name": "cart"}}, ("cartservice", "label:app.kubernetes.io/name")),
    ({"service": None, "host": "node-1", "labels": {}}, ("redis-cart", "placement")),
    ({"service": None, "host": "node-2", "labels": {}}, ("platform", "platform")),   # two services there
    ({"service": "unknown-svc", "host": "node-2", "labels": {}}, None),
    ({"service": None, "labels": {"app": 5}}, None),
])
def test_the_default_rules_in_order(fields: dict[str, object], expected: tuple[str, str] | None) -> None:
    placement = {"node-1": {"redis-cart", "not-in-catalog"}, "node-2": {"frontend", "cartservice"}}
    assert names(resolve_component(make_event(**fields), CATALOG, DEFAULT_RULES, placement)) == expected


def test_the_order_is_the_configured_one() -> None:
    event = make_event(service="frontend", labels={"app": "cart"})
    assert names(resolve_component(event, CATALOG, parse_rules("label:app, service"))) == ("cartservice", "label:app")
    assert names(resolve_component(event, CATALOG, parse_rules("service,label:app"))) == ("frontend", "service")
    assert resolve_component(event, CATALOG, parse_rules("label:job")) is None


def test_rules_parse_and_unknown_ones_are_refused() -> None:
    assert parse_rules("") == DEFAULT_RULES
    assert parse_rules("field, label:team.name ,placement,service") == (
        MappingRule(RuleKind.service), MappingRule(RuleKind.label, "team.name"), MappingRule(RuleKind.placement))
    assert [r.name for r in DEFAULT_RULES][:3] == ["service", "label:service", "label:app"]
    with pytest.raises(ValueError, match="'hostname'"):
        parse_rules("service,hostname")
    with pytest.raises(ValueError):
        parse_rules("label:")


def test_placement_comes_from_the_service_graph() -> None:
    graph = ServiceGraph()
    graph.learn_placement("redis-cart", "node-1", 10.0)
    graph.learn_placement("frontend", "node-2", 10.0)
    graph.learn_placement("cartservice", "node-2", 11.0)
    graph.learn_call("frontend", "cartservice", 12.0)
    assert placement_from_graph(graph) == {"node-1": frozenset({"redis-cart"}),
                                           "node-2": frozenset({"frontend", "cartservice"})}
