"""The responder and remediation recommender: nearest past incidents by template centroid."""

from __future__ import annotations

import numpy as np
import pytest

from triage.models.recommender import IncidentProfile, Recommender, Resolution, Suggestions


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def profile(incident_id: str, vector: np.ndarray | None, *services: str) -> IncidentProfile:
    return IncidentProfile(incident_id, vector, tuple(services), f"title of {incident_id}")


def test_suggests_the_nearest_past_incidents_responders_and_notes_weighted_by_similarity() -> None:
    model = Recommender(3, neighbours=3, min_similarity=0.5)
    model.learn_one(profile("redis-1", unit(1, 0.1, 0), "cart"), Resolution("amara", "restarted redis-cart"))
    model.learn_one(profile("redis-2", unit(1, 0.2, 0), "cart"), Resolution("amara", "restarted redis-cart"))
    model.learn_one(profile("redis-3", unit(1, 0, 0.3), "cart"), Resolution("lea", "raised maxclients"))
    model.learn_one(profile("dns", unit(0, 0, 1), "frontend"), Resolution("viktor", "restarted coredns"))
    got = model.predict_one(profile("new", unit(1, 0.11, 0), "cart"))
    assert [s.incident_id for s in got.similar] == ["redis-1", "redis-2", "redis-3"]   # dns is not similar
    assert got.similar[0].similarity >= got.similar[1].similarity >= got.similar[2].similarity
    assert [r for r, _ in got.responders] == ["amara", "lea"]
    assert got.responders[0][1] == pytest.approx(got.similar[0].similarity + got.similar[1].similarity, abs=1e-3)
    # each note once, from the nearest incident that wrote it
    assert [(note, source) for note, source, _ in got.remediations] == [
        ("restarted redis-cart", "redis-1"), ("raised maxclients", "redis-3")]


def test_nothing_below_the_minimum_similarity_and_never_the_incident_itself() -> None:
    model = Recommender(2, neighbours=5, min_similarity=0.9)
    model.learn_one(profile("a", unit(1, 0)), Resolution("ann", None))
    model.learn_one(profile("b", unit(1, 1)), Resolution("bob", None))   # cosine 0.71 with a
    assert [s.incident_id for s in model.predict_one(profile("a", unit(1, 0))).similar] == []
    assert [s.incident_id for s in model.predict_one(profile("q", unit(1, 0.05))).similar] == ["a"]


def test_learning_an_incident_again_replaces_its_resolution() -> None:
    model = Recommender(2)
    model.learn_one(profile("a", unit(1, 0)), Resolution("ann", "first guess"))
    model.learn_one(profile("a", unit(1, 0)), Resolution("bob", "what really fixed it"))
    got = model.predict_one(profile("q", unit(1, 0)))
    assert len(model) == 1 and got.responders == [("bob", 1.0)]
    assert got.remediations == [("what really fixed it", "a", 1.0)]


def test_incidents_without_a_centroid_or_without_an_answer_teach_nothing_and_get_nothing() -> None:
    model = Recommender(2)
    model.learn_one(profile("blank", None), Resolution("ann", "x"))
    model.learn_one(profile("silent", unit(1, 0)), Resolution(None, None))
    assert len(model) == 0
    model.learn_one(profile("a", unit(1, 0)), Resolution("ann", None))
    assert model.predict_one(profile("q", None)) == Suggestions.none()
    with pytest.raises(ValueError):
        Recommender(2, neighbours=0)


def test_the_document_is_the_page_fields() -> None:
    model = Recommender(2)
    model.learn_one(profile("a", unit(1, 0), "cart"), Resolution("ann", "rolled back"))
    doc = model.predict_one(profile("q", unit(1, 0))).document()
    assert doc == {
        "similar_past_incidents": [{"incident_id": "a", "title": "title of a", "similarity": 1.0,
                                    "services": ["cart"], "responder": "ann", "remediation": "rolled back",
                                    "resolved_at": None}],
        "suggested_responders": [{"responder": "ann", "score": 1.0}],
        "suggested_remediations": [{"remediation": "rolled back", "from_incident": "a", "similarity": 1.0}],
    }
