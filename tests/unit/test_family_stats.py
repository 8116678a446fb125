"""Alert families between fits: stable ids, per-family statistics, and family evidence."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from tests.conftest import T0, make_event
from triage.correlation.explain import explain
from triage.correlation.scoring import score_candidate
from triage.correlation.state import IncidentState
from triage.correlation.stored_evidence import evidence_from_json
from triage.correlation.templating import Templater, alert_template_id
from triage.services.families_job import family_stats
from triage.domain.event import Severity
from triage.models.embedder import HashingEmbedder
from triage.models.alert_families import TemplateFamilies, fit_families
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph
from triage.store.family_fits import TemplateUse

REDIS = ["Redis out of memory on <*>", "Redis out of memory on <*> again", "Redis out of memory on <*> now"]
CRASH = ["Kubernetes pod crash looping <*>", "Kubernetes pod crash looping again <*>",
         "Kubernetes pod crash looping now <*>"]
DISK = ["disk quota exceeded on <*>", "disk quota exceeded again on <*>"]


def families(members: dict[str, int], ids: tuple[int, ...] = ()) -> TemplateFamilies:
    count = len(ids) if ids else len(set(members.values()))
    return TemplateFamilies(members=members, centroids=np.eye(count, 4, dtype=np.float32), ids=ids)


def test_stats_count_events_incidents_pages_and_last_seen_per_family() -> None:
    fam = families({"redis a": 0, "redis b": 0, "disk": 1})
    texts = {"A1": "redis a", "A2": "redis b", "A3": "disk", "A4": "outlier"}
    usage = [
        TemplateUse("A1", events=4, pages=2, last_seen=T0 + timedelta(seconds=20), incidents={"inc-1", "inc-2"}),
        TemplateUse("A2", events=2, pages=0, last_seen=T0 + timedelta(seconds=50), incidents={"inc-1"}),
        TemplateUse("A3", events=1, pages=1, last_seen=None, incidents={"inc-3"}),
        TemplateUse("A4", events=9, pages=9, last_seen=T0, incidents={"inc-3"}),     # in no family
        TemplateUse("A9", events=9, pages=9, last_seen=T0, incidents={"inc-9"}),     # text unknown
    ]
    redis, disk = family_stats(fam, usage, texts)
    assert (redis.family, redis.size, redis.events, redis.incidents, redis.pages) == (0, 2, 6, 2, 2)
    assert redis.last_seen == T0 + timedelta(seconds=50)
    assert redis.templates == [("redis a", 4), ("redis b", 2)]
    assert (disk.family, disk.size, disk.events, disk.incidents, disk.pages, disk.last_seen) == (1, 1, 1, 1, 1, None)


def test_a_family_without_decisions_is_listed_with_zeros() -> None:
    [stats] = family_stats(families({"a": 4, "b": 4}, ids=(4,)), [], {})
    assert (stats.family, stats.size, stats.events, stats.incidents, stats.pages, stats.last_seen) == \
        (4, 2, 0, 0, 0, None)
    assert stats.templates == [("a", 0), ("b", 0)]


def test_a_refit_keeps_the_ids_of_the_families_it_finds_again() -> None:
    e = HashingEmbedder(dim=128)
    first = fit_families(REDIS + DISK, e.embed(REDIS + DISK)).aligned(None, 0)
    redis, disk = first.family_of(REDIS[0]), first.family_of(DISK[0])
    assert {redis, disk} == {0, 1}
    # The refit finds a new family (crash) whose first text sorts before the others,
    # which shifts HDBSCAN's numbering; the old families keep their ids all the same.
    texts = CRASH + REDIS[:2] + DISK
    fresh = fit_families(texts, e.embed(texts), assign_threshold=0.5)
    assert fresh.family_of(REDIS[0]) != redis
    again = fresh.aligned(first, next_id=5)
    assert again.family_of(REDIS[0]) == redis and again.family_of(DISK[0]) == disk
    assert again.family_of(CRASH[0]) == 5 and sorted(again.family_ids) == [redis, disk, 5]
    # The nearest-centroid answer for an unseen text gives the aligned id too.
    unseen = "Kubernetes pod crash looping <*> yet again"
    assert again.family_of(unseen, e.embed_one(unseen)) == 5
    restored = TemplateFamilies.from_json(again.to_json())
    assert restored.ids == again.ids and restored.family_of(unseen, e.embed_one(unseen)) == 5
    assert restored.version == again.version != fresh.version


def test_alert_template_ids_are_the_templaters() -> None:
    event = make_event(0, title="Redis out of memory on redis-7", labels={"instance": "redis-7"})
    template = Templater().template_of(event)
    assert alert_template_id(template.text) == template.id


def _incident() -> IncidentState:
    inc = IncidentState(id="inc-1", scope="global", title="t", opened_at=T0, last_event_at=T0,
                        severity=Severity.error)
    inc.nodes = {"redis": T0.timestamp()}
    inc.templates = {"A1": "Redis out of memory"}
    return inc


def test_fitted_families_are_evidence_even_at_weight_zero() -> None:
    params = CorrelationParameters()
    assert params.weight_family == 0

    def score(family: int | None, weight: float = 0.0):  # type: ignore[no-untyped-def]
        return score_candidate(_incident(), node="redis", template_id="A2", vector=np.ones(4, np.float32),
                               identity=frozenset(), now=T0 + timedelta(seconds=10), graph=ServiceGraph(),
                               params=params.model_copy(update={"weight_family": weight}),
                               similarity=lambda _i, _t, _v: (0.7, "Redis out of memory"),
                               family=family, incident_families=lambda _i: {3})

    plain = score_candidate(_incident(), node="redis", template_id="A2", vector=np.ones(4, np.float32),
                            identity=frozenset(), now=T0 + timedelta(seconds=10), graph=ServiceGraph(),
                            params=params, similarity=lambda _i, _t, _v: (0.7, "Redis out of memory"))
    same = score(3)
    assert same.candidate().family == 3 and same.candidate().family_match is True
    assert same.components.family is None and same.score == plain.score   # weight 0: evidence only
    assert score(4).candidate().family_match is False
    assert "family" not in score(None).candidate().as_json()                 # the template is in none
    weighted = score(3, weight=0.2)
    assert weighted.components.family == 1.0 and weighted.score > plain.score

    # (a stored decision with only some of its keys, read back as stored decisions are)
    evidence = {**same.candidate().as_json(), "service": "redis", "threshold": 0.55, "parameters_version": 2}
    sentence = explain("correlated", evidence_from_json("correlated", evidence))
    assert sentence.startswith("joined because: same service redis, 10 s after")
    assert "template similarity 0.70, same alert family 3 (score" in sentence
    assert "alert family" not in explain("correlated", evidence_from_json("correlated",
                                                                          {**evidence, "family_match": False}))
