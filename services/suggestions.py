"""Suggestions for one incident, from the store: the recommender (``models.recommender``)
taught every incident whose resolution triage has heard of, asked about this one.

Not on the hot path: asked when a page is composed and by ``GET /incidents/{id}``. The
taught model is kept until feedback arrives or the parameters change, so a burst of pages
reads the past incidents once. Needs no embedding model: incidents are compared by the
template centroids the correlator stored.
"""

from __future__ import annotations

import threading
from datetime import datetime

from triage.models.parameters import CorrelationParameters
from triage.models.recommender import Recommender, Suggestions
from triage.store import SqlStore
from triage.store.feedback import FeedbackStore
from triage.store.parameters import ParameterStore

_DIM = 384   # MiniLM's, for a store with no centroid yet


class SuggestionService:
    def __init__(self, store: SqlStore, parameters: CorrelationParameters | None = None) -> None:
        self.store = store
        self.feedback = FeedbackStore(store.engine)
        # Fixed parameters (tests, eval) or the newest version, as the correlator uses.
        self._fixed = parameters
        self._versions = ParameterStore(store.engine)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, datetime | None, int], Recommender] | None = None

    def for_incident(self, incident_id: str) -> Suggestions:
        profiles = self.store.incident_profiles([incident_id])
        if not profiles:
            return Suggestions.none()
        return self.model().predict_one(profiles[0])

    def model(self) -> Recommender:
        if self._fixed is not None:
            params, version = self._fixed, -1
        else:
            current = self._versions.current()
            params, version = current.parameters, current.version
        key = (*self.feedback.stamp(), version)
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
        resolutions = self.feedback.resolutions()
        profiles = self.store.incident_profiles(resolutions)
        dims = [len(p.vector) for p in profiles if p.vector is not None]
        model = Recommender(dims[0] if dims else _DIM, neighbours=params.suggest_neighbours,
                            min_similarity=params.suggest_min_similarity)
        for profile in profiles:
            if profile.vector is not None and len(profile.vector) == model.dim:
                model.learn_one(profile, resolutions[profile.incident_id])
        with self._lock:
            self._cached = (key, model)
        return model
