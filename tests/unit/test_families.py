"""Alert families: HDBSCAN over template embeddings, offline, as a pure function."""

from __future__ import annotations

import numpy as np

from tests.conftest import make_event
from triage.correlation import Correlator
from triage.models.embedder import HashingEmbedder
from triage.models.alert_families import TemplateFamilies, fit_families
from triage.models.parameters import CorrelationParameters

TEXTS = [
    "Redis out of memory on <*>", "[Triggered] Redis out of memory on <*>", "[Recovered] Redis out of memory on <*>",
    "Kubernetes pod crash looping <*>", "Kubernetes pod crash looping again <*>", "Kubernetes pod crash looping now <*>",
    "disk quota exceeded",
]


def test_families_group_similar_templates_and_leave_outliers_out() -> None:
    e = HashingEmbedder(dim=128)
    fam = fit_families(TEXTS, e.embed(TEXTS))
    redis = {fam.family_of(t) for t in TEXTS[:3]}
    crash = {fam.family_of(t) for t in TEXTS[3:6]}
    assert len(redis) == 1 and len(crash) == 1 and redis != crash and None not in redis | crash
    assert fam.family_of("disk quota exceeded") is None
    # deterministic, whatever the input order
    again = fit_families(TEXTS[::-1], e.embed(TEXTS[::-1]))
    assert again.members == fam.members and again.version == fam.version


def test_unseen_text_joins_the_nearest_family_and_json_round_trips() -> None:
    e = HashingEmbedder(dim=128)
    fam = fit_families(TEXTS, e.embed(TEXTS), assign_threshold=0.5)
    family = fam.family_of("Redis out of memory on <*>")
    assert fam.family_of("Redis out of memory", e.embed_one("Redis out of memory")) == family
    restored = TemplateFamilies.from_json(fam.to_json())
    assert restored.members == fam.members and np.allclose(restored.centroids, fam.centroids, atol=1e-5)


def test_family_is_an_evidence_component_when_given() -> None:
    e = HashingEmbedder(dim=128)
    fam = fit_families(TEXTS, e.embed(TEXTS))
    c = Correlator(CorrelationParameters(weight_family=0.2), embedder=e, families=fam)
    a = make_event(0, fingerprint="a", title="[Triggered] Redis out of memory on redis-1")
    b = make_event(10, fingerprint="b", title="Redis out of memory on redis-2")
    first, second = c.process_batch([a, b])
    assert second.incident_id == first.incident_id and second.evidence.match.components.family == 1.0
    plain = Correlator(CorrelationParameters(), embedder=e).process_batch([a, b])[1]
    assert plain.evidence.match.components.family is None
