"""Template texts as vectors, for the correlator: the embedding of a text, the best
cosine between an event's template and an incident's templates, and the fitted alert
families an incident shows, each cached per incident until it gains a template (an
incident's templates are only ever added, so their count tells)."""

from __future__ import annotations

import numpy as np

from triage.correlation.state import IncidentState
from triage.models.alert_families import TemplateFamilies
from triage.models.embedder import Embedder

__all__ = ["TemplateVectors"]


class TemplateVectors:
    def __init__(self, embedder: Embedder, families: TemplateFamilies | None) -> None:
        self.embedder = embedder
        self.families = families
        self._families: dict[str, tuple[int, set[int]]] = {}
        self._similar: dict[tuple[str, int, str], tuple[float, str | None]] = {}  # text sims
        self._matrices: dict[str, tuple[int, np.ndarray, list[str]]] = {}

    def forget(self, incident_id: str) -> None:
        """Drop what is cached of an incident the correlator no longer indexes."""
        self._matrices.pop(incident_id, None)
        self._families.pop(incident_id, None)

    def vector(self, text: str) -> np.ndarray:
        vector = self.embedder.cached(text)
        if vector is None:
            vector = self.embedder.embed([text])[0]
        return vector

    def families_of(self, incident: IncidentState) -> set[int]:
        assert self.families is not None
        count = len(incident.templates)
        cached = self._families.get(incident.id)
        if cached is None or cached[0] != count:
            families = (self.families.family_of(text, self.vector(text)) for text in incident.templates.values())
            found = {f for f in families if f is not None}
            cached = self._families[incident.id] = (count, found)
        return cached[1]

    def similarity(self, incident: IncidentState, template_id: str, vector: np.ndarray) -> tuple[float, str | None]:
        """Best cosine between ``vector`` and the incident's template embeddings."""
        count = len(incident.templates)
        if count == 0:
            return 0.0, None
        key = (incident.id, count, template_id)
        hit = self._similar.get(key)
        if hit is not None:
            return hit
        cached = self._matrices.get(incident.id)
        if cached is None or cached[0] != count:
            texts = list(incident.templates.values())
            matrix = np.stack([self.vector(t) for t in texts])
            cached = self._matrices[incident.id] = (count, matrix, texts)
        _, matrix, texts = cached
        sims = matrix @ vector
        best = int(np.argmax(sims))
        hit = (float(sims[best]), texts[best])
        if len(self._similar) > 262144:
            self._similar.clear()
        self._similar[key] = hit
        return hit
