"""The service catalog file: the shared data's shape parses; anything malformed is refused
with the line and field at fault."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import SHARED_DATA, skip_or_fail
from triage.models.catalog import Catalog, CatalogError, ComponentKind, Runbook, ServiceEntry, TeamEntry

GOOD = """\
# a comment line
services:
  - service: cartservice
    kind: service
    team: cart
    owners: [amara.ruiz, nadia.berg]
    depends_on: [redis-cart]
    aliases: [cart]
    runbooks:
      - title: "cartservice: Rollback a bad deploy"
        url: https://runbooks.example.internal/cart/rollback
        tags: [deploy, rollback]
    pagerduty: {service_id: PCART01, escalation_policy_id: PESC01}
  - service: redis-cart
    kind: datastore
    team: cart
  - service: platform
    kind: platform
teams:
  - team: cart
    members: [amara.ruiz, nadia.berg, lea.kim]
    slack: "#cart-oncall"
    rotation: weekly
"""


def test_a_good_catalog_parses_into_entries() -> None:
    catalog = Catalog.from_yaml(GOOD)
    cart = catalog.services["cartservice"]
    assert cart == ServiceEntry(
        name="cartservice", kind=ComponentKind.service, team="cart", owners=("amara.ruiz", "nadia.berg"),
        depends_on=("redis-cart",), aliases=("cart",),
        runbooks=(Runbook("cartservice: Rollback a bad deploy", "https://runbooks.example.internal/cart/rollback",
                          ("deploy", "rollback")),),
        pagerduty=cart.pagerduty)
    assert cart.pagerduty is not None and cart.pagerduty.service_id == "PCART01"
    assert catalog.services["redis-cart"].kind is ComponentKind.datastore
    assert catalog.teams["cart"] == TeamEntry("cart", ("amara.ruiz", "nadia.berg", "lea.kim"), ("#cart-oncall",),
                                              "weekly")
    assert catalog.service("cart") is cart and catalog.service("nope") is None
    assert catalog.team_of("cart") == catalog.teams["cart"] and catalog.team_of("platform") is None


@pytest.mark.parametrize("name", ["boutique-week", "boutique-storm"])
def test_the_shared_catalogs_parse_and_round_trip(name: str) -> None:
    path = SHARED_DATA / "alerts" / name / "services.yaml"
    if not path.exists():
        skip_or_fail(f"{path} is not here (shared/data beside the checkout)")
    catalog = Catalog.from_yaml(path.read_text())
    assert len(catalog.services) == 12 and set(catalog.teams) == {"storefront", "checkout", "cart", "platform-sre"}
    assert catalog.services["checkoutservice"].depends_on[0] == "cartservice"
    assert all(e.team in catalog.teams for e in catalog.services.values())
    assert Catalog.from_yaml(yaml.safe_dump(catalog.document())) == catalog


@pytest.mark.parametrize("change,line,field,words", [
    (("team: cart\n    owners", "team: carts\n    owners"), 5, "services[0].team", "'carts' is not among the teams"),
    (("owners: [amara.ruiz, nadia.berg]", "owners: amara.ruiz"), 6, "services[0].owners", "valid list"),
    (("kind: datastore", "kind: cache"), 15, "services[1].kind", "'datastore'"),
    (("depends_on: [redis-cart]", "depend_on: [redis-cart]"), 7, "services[0].depend_on", "not permitted"),
    (("url: https://runbooks.example.internal/cart/rollback", "url: runbooks/cart"), 11,
     "services[0].runbooks[0].url", "http"),
    (("  - service: redis-cart\n", "  - service: cartservice\n"), 14, "services[1].service", "listed twice"),
    (("kind: platform", "kind: 3"), 18, "services[2].kind", "'service'"),
    (("  - service: platform\n    kind: platform\n", "  - kind: platform\n"), 17, "services[2].service",
     "Field required"),
    (("aliases: [cart]", "aliases: [redis-cart]"), 8, "services[0].aliases[0]", "already names"),
    (("service: platform", "service: graph"), 17, "services[2].service", "reserved"),
    (("service: platform", "service: a/b"), 17, "services[2].service", "'/'"),
    (("members: [amara.ruiz, nadia.berg, lea.kim]", "members: [amara.ruiz, [nadia.berg]]"), 21,
     "teams[0].members[1]", "valid string"),
    (("rotation: weekly", "rotation: weekly\n  - team: cart"), 24, "teams[1].team", "listed twice"),
])
def test_malformed_catalogs_name_the_line_and_field(change: tuple[str, str], line: int, field: str,
                                                    words: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(CatalogError) as caught:
        Catalog.from_yaml(GOOD.replace(old, new, 1))
    err = caught.value
    assert (err.line, err.field) == (line, field), str(err)
    assert words in err.reason and str(err).startswith(f"line {line}, {field}: ")


@pytest.mark.parametrize("text,line", [
    ("services:\n  - service: a\n    team: [unclosed\n", 4), ("services: [\n", 2), ("", None), ("- a\n", 1),
    ('services:\n  - service: "a\\0b"\n', 2),
])
def test_what_is_not_a_catalog_is_refused(text: str, line: int | None) -> None:
    with pytest.raises(CatalogError) as caught:
        Catalog.from_yaml(text)
    assert caught.value.line == line, str(caught.value)


def test_a_file_may_omit_what_it_does_not_know(tmp_path: Path) -> None:
    catalog = Catalog.from_yaml("services:\n  - service: a\n")
    assert catalog.services["a"] == ServiceEntry("a") and catalog.teams == {}
