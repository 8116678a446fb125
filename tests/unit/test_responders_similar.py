"""Responders (catalog on day one, the rotation learned after), similar incidents and
remediations, each with evidence."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from tests.conftest import T0
from triage.models.catalog import Catalog
from triage.models.responders import PastResolution, ResponderModel
from triage.models.similar import PastIncident, RemediationSource, SimilarIndex, TriageProfile, rank_remediations

CATALOG = Catalog.from_yaml("""
services:
  - service: cartservice
    team: cart
    owners: [amara.ruiz, nadia.berg]
    depends_on: [redis-cart]
    runbooks:
      - {title: "Rollback a bad deploy", url: "https://rb/cart/rollback", tags: [deploy, rollback]}
      - {title: "Pods crash looping / OOMKilled", url: "https://rb/cart/oom", tags: [kubernetes, restarts, memory]}
  - service: redis-cart
    kind: datastore
    team: cart
    runbooks:
      - {title: "Memory full / evictions", url: "https://rb/redis/memory", tags: [database, memory]}
teams:
  - {team: cart, members: [amara.ruiz, nadia.berg, lea.kim, uma.patel]}
""")
DAY = timedelta(days=1)


def test_day_one_the_owners_then_the_rotation_learned_from_who_resolved_lately() -> None:
    model = ResponderModel()
    day_one = model.suggest(now=T0, catalog=CATALOG, component="cartservice")
    assert day_one.team == "cart" and day_one.team_evidence == "owns cartservice in the catalog"
    assert [p.person for p in day_one.people] == ["amara.ruiz", "nadia.berg", "lea.kim"]
    assert day_one.people[0].evidence == ("owner of cartservice",)
    # last week lea.kim was on call, this week uma.patel: the newest rotation wins
    for i in range(4):
        model.learn_one(PastResolution(f"old-{i}", "cart", "lea.kim", T0 - 8 * DAY + i * timedelta(hours=3)))
    for i in range(3):
        model.learn_one(PastResolution(f"new-{i}", "cart", "uma.patel", T0 - DAY + i * timedelta(hours=3)))
    later = model.suggest(now=T0, catalog=CATALOG, component="cartservice")
    assert [p.person for p in later.people][:2] == ["uma.patel", "lea.kim"]
    assert later.people[0].evidence[0] == "resolved 3 of the last 5 incidents of team cart"
    assert abs(sum(p.confidence for p in later.people) - 1) < 0.2 and later.people[0].confidence > 0.5


def test_one_weak_match_of_a_short_history_does_not_outweigh_the_catalog_a_strong_one_does() -> None:
    model = ResponderModel()
    # the only incident resolved so far, by another team's engineer, and barely alike
    model.learn_one(PastResolution("other", "storefront", "mateo.wang", T0 - timedelta(hours=2)))
    weak = model.suggest(now=T0, catalog=CATALOG, component="cartservice", similar=[("other", 1.1)])
    assert [p.person for p in weak.people][:2] == ["amara.ruiz", "mateo.wang"]
    assert "resolved similar incident other" in weak.people[1].evidence
    strong = model.suggest(now=T0, catalog=CATALOG, component="cartservice", similar=[("other", 4.0)])
    assert strong.people[0].person == "mateo.wang"   # the same problem, fixed by the same hands
    learned = [("other", 4.0)] + [(f"cart-{i}", 4.0) for i in range(2)]
    for i in range(2):
        model.learn_one(PastResolution(f"cart-{i}", "cart", "lea.kim", T0 - timedelta(hours=1)))
    assert model.suggest(now=T0, catalog=CATALOG, component="cartservice", similar=learned).people[0].person == "lea.kim"


def test_similar_incidents_are_earlier_only_and_the_same_cause_failing_the_same_way_comes_first() -> None:
    index = SimilarIndex()
    v = np.array([1.0, 0.0], dtype=np.float32)
    w = np.array([0.6, 0.8], dtype=np.float32)

    def profile(id: str, days: int, cause: str, words: str, vector: np.ndarray) -> TriageProfile:
        return TriageProfile(id, T0 + days * DAY, causes=(cause,), cause_words=frozenset(words.split()), vector=vector)

    index.learn_one(PastIncident(profile("oom", 0, "cartservice", "oom killed memory", v), "a", "raised the limit"))
    index.learn_one(PastIncident(profile("slow", 1, "cartservice", "latency percentile", v), "b", "rolled back"))
    index.learn_one(PastIncident(profile("other", 2, "redis-cart", "evictions", w), "c", "flushed"))
    index.learn_one(PastIncident(profile("later", 9, "cartservice", "oom killed memory", v), "d", "x"))
    query = profile("q", 5, "cartservice", "oom killed memory heap", v)
    found = index.search(query)
    assert [m.incident.profile.incident_id for m in found][:2] == ["oom", "slow"]
    assert "later" not in [m.incident.profile.incident_id for m in found]
    assert "same probable cause: cartservice" in found[0].evidence

    remediations = rank_remediations(similar=found, causes=query.causes, catalog=CATALOG, cause_entry="cartservice",
                                     neighbours=["redis-cart"], texts=["KubernetesContainerOomKiller"],
                                     annotations=[("KubernetesContainerOomKiller", "https://rb/annotated")])
    assert remediations[0].text == "raised the limit" and remediations[0].source is RemediationSource.past_resolution
    assert remediations[0].evidence.startswith("what resolved oom")
    urls = [r.url for r in remediations if r.url]
    assert urls[:2] == ["https://rb/annotated", "https://rb/cart/oom"]   # the OOM runbook, not the rollback
    assert "https://rb/cart/rollback" not in urls
    assert all(r.evidence for r in remediations)


def test_the_rotations_secondary_comes_before_other_teams_resolvers_of_similar_incidents() -> None:
    model = ResponderModel()
    # this week: lea.kim (primary) resolved eight of the team's incidents, uma.patel
    # (secondary) one; storefront's mateo.wang resolved three incidents, one of them like this one
    for i in range(8):
        model.learn_one(PastResolution(f"primary-{i}", "cart", "lea.kim", T0 - DAY + i * timedelta(hours=2)))
    model.learn_one(PastResolution("secondary", "cart", "uma.patel", T0 - 2 * DAY))
    for i in range(3):
        model.learn_one(PastResolution(f"alike-{i}", "storefront", "mateo.wang", T0 - (i + 1) * timedelta(hours=5)))
    people = model.suggest(now=T0, catalog=CATALOG, component="cartservice",
                           similar=[("alike-0", 1.2)]).people
    assert [p.person for p in people][:2] == ["lea.kim", "uma.patel"]
    assert people[1].evidence[0] == "resolved 1 incident of team cart before"
    assert "mateo.wang" in [p.person for p in people]


def test_someone_of_another_team_who_resolves_the_teams_incidents_counts_in_its_rotation_at_half() -> None:
    # cart's own people resolve most of its incidents; platform's olga.berg was brought two
    # of them this week, as many as cart's secondary resolved: she comes after both, ahead
    # of the catalog's owners
    model = ResponderModel()
    for i in range(6):
        model.learn_one(PastResolution(f"own-{i}", "cart", "lea.kim", T0 - DAY + i * timedelta(hours=2)))
    for i in range(2):
        model.learn_one(PastResolution(f"secondary-{i}", "cart", "uma.patel", T0 - (i + 2) * DAY))
        model.learn_one(PastResolution(f"brought-{i}", "platform-sre", "olga.berg", T0 - (i + 1) * timedelta(hours=5),
                                       owner_team="cart"))
    people = model.suggest(now=T0, catalog=CATALOG, component="cartservice").people
    assert [p.person for p in people] == ["lea.kim", "uma.patel", "olga.berg"]
    assert people[2].evidence[0] == "resolved 2 of the last 5 incidents of team cart (of team platform-sre)"
    # the latest resolution of all, her one, does not put her ahead of the team's primary
    model = ResponderModel()
    model.learn_one(PastResolution("own", "cart", "lea.kim", T0 - DAY))
    model.learn_one(PastResolution("brought", "platform-sre", "olga.berg", T0 - timedelta(minutes=10),
                                   owner_team="cart"))
    assert [p.person for p in model.suggest(now=T0, catalog=CATALOG, component="cartservice").people][:2] == \
        ["lea.kim", "olga.berg"]
