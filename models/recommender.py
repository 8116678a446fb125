"""Responders and remediations, suggested from similar past incidents.

An incident is described by what the correlator already keeps of it: its template
centroid (the mean embedding of the templates it holds, unit length) and its services.
When an incident has been dealt with and triage learns who resolved it and how (a
PagerDuty webhook, or ``POST /incidents/{id}/resolution``), ``learn_one`` files it.
``predict_one`` looks up the past incidents whose centroid is nearest the new one's (a
faiss inner-product index: cosine on unit vectors) with at least ``min_similarity``, at
most ``neighbours`` of them, and suggests

* **responders**: each neighbour's responder, votes weighted by similarity;
* **remediations**: the neighbours' resolution notes, nearest first, each text once;
* **similar past incidents**: the neighbours themselves, with their similarity.

Online in river's shape (``learn_one`` / ``predict_one``): there is nothing to refit,
and a resolution learned a second time for the same incident replaces the first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from triage.models.index import CentroidIndex

__all__ = ["IncidentProfile", "Recommender", "Resolution", "SimilarIncident", "Suggestions"]


@dataclass(frozen=True)
class IncidentProfile:
    incident_id: str
    vector: np.ndarray | None       # template centroid, unit length; None: nothing to compare
    services: tuple[str, ...] = ()
    title: str = ""


@dataclass(frozen=True)
class Resolution:
    """Who resolved an incident and what they did (either may be unknown)."""

    responder: str | None
    remediation: str | None
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class SimilarIncident:
    incident_id: str
    similarity: float
    title: str
    services: tuple[str, ...]
    responder: str | None
    remediation: str | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class Suggestions:
    similar: list[SimilarIncident]
    responders: list[tuple[str, float]]          # (responder, summed similarity), best first
    remediations: list[tuple[str, str, float]]   # (note, from incident, similarity), best first

    @classmethod
    def none(cls) -> "Suggestions":
        return cls([], [], [])

    def document(self) -> dict[str, list[dict[str, Any]]]:
        """As JSON: the three fields of a page and of ``GET /incidents/{id}``."""
        return {
            "similar_past_incidents": [
                {"incident_id": s.incident_id, "title": s.title, "similarity": s.similarity,
                 "services": list(s.services), "responder": s.responder, "remediation": s.remediation,
                 "resolved_at": s.resolved_at.isoformat() if s.resolved_at else None}
                for s in self.similar],
            "suggested_responders": [{"responder": r, "score": score} for r, score in self.responders],
            "suggested_remediations": [{"remediation": note, "from_incident": source, "similarity": sim}
                                       for note, source, sim in self.remediations],
        }


class Recommender:
    def __init__(self, dim: int, *, neighbours: int = 5, min_similarity: float = 0.5) -> None:
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        self.dim = dim
        self.neighbours = neighbours
        self.min_similarity = min_similarity
        self._index = CentroidIndex(dim)
        self._past: dict[str, tuple[IncidentProfile, Resolution]] = {}

    def __len__(self) -> int:
        return len(self._past)

    def learn_one(self, profile: IncidentProfile, resolution: Resolution) -> None:
        if profile.vector is None or (resolution.responder is None and resolution.remediation is None):
            return   # nothing to find it by, or nothing it could teach
        self._index.upsert(profile.incident_id, profile.vector)
        self._past[profile.incident_id] = (profile, resolution)

    def predict_one(self, profile: IncidentProfile) -> Suggestions:
        if profile.vector is None:
            return Suggestions.none()
        # One more than asked for, in case the incident itself was learned already.
        hits = self._index.search(profile.vector, self.neighbours + 1)
        similar = []
        for key, score in hits:
            if key == profile.incident_id or score < self.min_similarity:
                continue
            past, resolution = self._past[key]
            similar.append(SimilarIncident(
                incident_id=key, similarity=round(score, 4), title=past.title, services=past.services,
                responder=resolution.responder, remediation=resolution.remediation,
                resolved_at=resolution.resolved_at))
        similar = similar[:self.neighbours]
        votes: dict[str, float] = defaultdict(float)
        remediations: dict[str, tuple[str, float]] = {}
        for s in similar:
            if s.responder:
                votes[s.responder] += s.similarity
            if s.remediation and s.remediation not in remediations:
                remediations[s.remediation] = (s.incident_id, s.similarity)
        responders = sorted(((r, round(v, 4)) for r, v in votes.items()), key=lambda rv: (-rv[1], rv[0]))
        return Suggestions(similar=similar, responders=responders,
                           remediations=[(note, src, sim) for note, (src, sim) in remediations.items()])
