"""An incident's triage context from the store: probable cause with its evidence, recent
changes, owner team, responders, remediations and similar past incidents
(``models.triage_context``), for ``GET /incidents/{id}`` and for every page.

What it reads: the incident's events around its first alert (``page_view``: what triage
knew when it first paged), the host and cluster alerts of other incidents around it
(``platform_signals``: a node already under memory pressure, the other hosts of a zone),
its template centroid, the changes recorded near it, the
catalog in force, and the resolutions heard so far (PagerDuty webhooks, ``POST
/incidents/{id}/resolution``). The past incidents are triaged once, in the order they
started, and kept until feedback arrives or the catalog changes, so a burst of pages
reads them once; each past incident's profile is kept, so new feedback triages only the
incidents it names. Times come from the incidents, never from a clock: the same store
answers the same.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta

from triage.domain.change import Change
from triage.models.catalog import Catalog
from triage.models.similar import TriageProfile
from triage.models.triage_context import (CHANGE_LOOKBACK, PAGE_HORIZON, PLATFORM_LOOKBACK, TriageContext, Triager,
                                          page_view, platform_signals)
from triage.services.catalog import CatalogCache
from triage.store import SqlStore
from triage.store.changes import ChangeStore
from triage.store.feedback import FeedbackStore

__all__ = ["TriageContextService"]

_TICK = timedelta(milliseconds=1)   # the store's windows are half-open; the view's end is in it
MAX_EVENTS = 2000   # events read per incident: the first page's view lies in its first ones


class TriageContextService:
    def __init__(self, store: SqlStore, catalog: CatalogCache | None = None,
                 zones: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.zones = dict(zones or {})   # host -> availability zone (TRIAGE_TOPOLOGY_FILE)
        self.catalog = catalog or CatalogCache(store.engine)
        self.feedback = FeedbackStore(store.engine)
        self.changes = ChangeStore(store.engine)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, datetime | None, int], Triager] | None = None
        # past incident -> how it was triaged when it paged (its first page's view does not
        # change once the page is old): a refresh triages only the newly resolved ones
        self._profiles: dict[str, TriageProfile] = {}
        self._profiles_of: Catalog | None = None   # the catalog the kept profiles were made with

    def for_incident(self, incident_id: str) -> TriageContext | None:
        """The incident's context, or None when there is no such incident or it holds no event."""
        record = self.store.get_incident(incident_id)
        if record is None:
            return None
        triager = self.model()
        return self._triage(triager, incident_id)

    def _triage(self, triager: Triager, incident_id: str) -> TriageContext | None:
        events = [s.event for s in self.store.incident_events(incident_id, limit=MAX_EVENTS)]
        view = page_view(events)
        if view is None:
            return None
        anchor, seen = view
        now = anchor.occurred_at + PAGE_HORIZON
        profiles = self.store.incident_profiles([incident_id])
        vector = profiles[0].vector if profiles else None
        record = self.store.get_incident(incident_id)
        changes = self._changes(anchor.occurred_at, now)
        start = seen[0].occurred_at   # the view is in time order
        nearby = self.store.platform_alerts(start - PLATFORM_LOOKBACK, now + _TICK)
        return triager.triage(incident_id, seen, now=now, vector=vector, changes=changes,
                              title=record.title if record is not None else "", started_at=anchor.occurred_at,
                              platform=platform_signals(nearby, seen, start=start, now=now))

    def _changes(self, start: datetime, now: datetime) -> list[Change]:
        return sorted(self.changes.changes_near(None, start - CHANGE_LOOKBACK, now, limit=500),
                      key=lambda c: (c.occurred_at, c.id))

    def model(self) -> Triager:
        """A triager taught every incident with a resolution, each as triage saw it when it
        first paged, in the order they started."""
        catalog = self.catalog.current()
        key = (*self.feedback.stamp(), id(catalog))
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
        triager = self._teach(catalog)
        with self._lock:
            self._cached = (key, triager)
        return triager

    def _teach(self, catalog: Catalog) -> Triager:
        if self._profiles_of is not catalog:   # the owners of their causes may have changed
            self._profiles, self._profiles_of = {}, catalog
        triager = Triager(catalog, zones=self.zones)
        resolutions = self.feedback.resolutions()
        past = []
        for incident_id, resolution in resolutions.items():
            record = self.store.get_incident(incident_id)
            if record is not None:
                past.append((record.opened_at, incident_id, resolution))
        for opened_at, incident_id, resolution in sorted(past, key=lambda p: (p[0], p[1])):
            profile = self._profiles.get(incident_id)
            if profile is None:
                context = self._triage(triager, incident_id)
                if context is None:
                    continue
                profile = self._profiles[incident_id] = context.profile
            triager.learn(profile, responder=resolution.responder, note=resolution.remediation,
                          resolved_at=resolution.resolved_at or opened_at)
        return triager
