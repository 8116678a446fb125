"""The correlator's working state: incidents, known signals and the learned models, as plain data.

The store is the source of truth; for each batch the caller loads the slice of
state the batch can touch (the incidents still accepting events in the batch's
scopes, the signals it repeats, the scopes' learned models) and saves back what the
correlator marked dirty. Everything here is JSON-serialisable through the store's
row mappers; nothing reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np

from triage.correlation.holds import AlertHistory, Hold
from triage.correlation.templating import Templater
from triage.domain.event import Severity, Status
from triage.models.topology import ServiceGraph


class IncidentKind(StrEnum):
    """What a group is; the text is what the store and the API show."""

    incident = "incident"   # holds (or held) a firing alert: pages by the timers
    noise = "noise"         # logs / spans / resolves only: recorded, pages nobody


class IncidentStatus(StrEnum):
    open = "open"
    resolved = "resolved"
    merged = "merged"       # a responder merged it into another (the store's ``merged_into``)


_OPEN = IncidentStatus.open   # (is_open runs several times per event: a global, not a class attribute)


@dataclass
class IncidentState:
    id: str
    scope: str
    title: str
    opened_at: datetime
    last_event_at: datetime
    severity: Severity
    status: IncidentStatus = IncidentStatus.open
    resolved_at: datetime | None = None
    services: set[str] = field(default_factory=set)
    firing: set[str] = field(default_factory=set)   # dedup keys of alerts still firing
    event_count: int = 0
    alert_count: int = 0
    suppressed_count: int = 0
    last_notified_at: datetime | None = None
    dirty: bool = False
    # -- the engine's profile of the incident (migration 0002) --
    kind: IncidentKind = IncidentKind.incident
    accepting_until: datetime | None = None   # the last instant a new event may join
    page_due_at: datetime | None = None       # first page held until then (auto-pause)
    transient: bool = False                   # resolved before its first page was due
    # the alert family ("<node>|<template id>") of the firing alert that made it an incident
    family: str | None = None
    # its first page is damped (a chronic or flapping family) until the incident changes
    damped: Hold | None = None
    # node (service, "host:<h>", "global") -> epoch seconds it was last seen
    nodes: dict[str, float] = field(default_factory=dict)
    # "<node>|<template id>" -> epoch seconds last seen: what the incident has shown
    footprint: dict[str, float] = field(default_factory=dict)
    # template id -> the template's text when it first joined (what gets embedded)
    templates: dict[str, str] = field(default_factory=dict)
    # identity label values (pods, nodes, instances) -> epoch seconds last seen
    labels: dict[str, float] = field(default_factory=dict)
    centroid: list[float] | None = None       # mean of the templates' embeddings, normalised
    # Services the store has already linked to the incident (its incident_services rows):
    # a batch writes only the new links, not every link of every incident it touched.
    linked_services: set[str] = field(default_factory=set, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status == _OPEN

    def accepts(self, now: datetime) -> bool:
        return self.accepting_until is not None and now <= self.accepting_until

    def absorb(self, other: "IncidentState") -> None:
        """Take ``other`` in, as a responder's merge does: its events, alerts, services and
        profile become this incident's. The centroid becomes the mean of the two weighted
        by their templates (exact when they share none; the correlator recomputes it from
        the templates when the next new one joins)."""
        if other.scope != self.scope:
            raise ValueError(f"{other.id} is in scope {other.scope!r}, {self.id} in {self.scope!r}")
        mine, theirs = len(self.templates), len(other.templates)
        if other.centroid is not None and (self.centroid is None or mine == 0):
            self.centroid = list(other.centroid)
        elif other.centroid is not None and self.centroid is not None and theirs:
            mixed = np.asarray(self.centroid) * mine + np.asarray(other.centroid) * theirs
            self.centroid = [float(x) for x in np.round(mixed / (np.linalg.norm(mixed) or 1.0), 5)]
        self.opened_at = min(self.opened_at, other.opened_at)
        self.last_event_at = max(self.last_event_at, other.last_event_at)
        self.event_count += other.event_count
        self.alert_count += other.alert_count
        self.suppressed_count += other.suppressed_count
        self.services |= other.services
        self.firing |= other.firing
        if other.severity.rank > self.severity.rank:
            self.severity = other.severity
        if other.kind == IncidentKind.incident and self.kind != IncidentKind.incident:
            self.kind, self.title = IncidentKind.incident, other.title   # as when an alert joins a noise group
        if other.is_open and not self.is_open:
            self.status, self.resolved_at = IncidentStatus.open, None
        elif not self.is_open and other.resolved_at is not None and self.resolved_at is not None:
            self.resolved_at = max(self.resolved_at, other.resolved_at)
        if other.accepting_until is not None:
            self.accepting_until = max(self.accepting_until or other.accepting_until, other.accepting_until)
        if other.last_notified_at is not None:
            self.last_notified_at = max(self.last_notified_at or other.last_notified_at, other.last_notified_at)
        if other.page_due_at is not None:
            self.page_due_at = min(self.page_due_at or other.page_due_at, other.page_due_at)
        self.transient = self.transient and other.transient
        if other.damped is None:   # damping holds only while every part of the incident is damped
            self.damped = None
        self.family = self.family or other.family
        for mine_, theirs_ in ((self.nodes, other.nodes), (self.footprint, other.footprint),
                               (self.labels, other.labels)):
            for key, seen in theirs_.items():
                mine_[key] = max(seen, mine_.get(key, seen))
        for template_id, text in other.templates.items():
            self.templates.setdefault(template_id, text)
        self.dirty = True

    def profile(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nodes": self.nodes, "footprint": self.footprint, "templates": self.templates,
                               "labels": self.labels}
        if self.family is not None:
            out["family"] = self.family
        if self.damped is not None:
            out["damped"] = self.damped.as_json()
        return out

    def set_profile(self, profile: dict[str, Any] | None) -> None:
        profile = profile or {}
        self.nodes = {str(k): float(v) for k, v in (profile.get("nodes") or {}).items()}
        self.footprint = {str(k): float(v) for k, v in (profile.get("footprint") or {}).items()}
        self.templates = {str(k): str(v) for k, v in (profile.get("templates") or {}).items()}
        self.labels = {str(k): float(v) for k, v in (profile.get("labels") or {}).items()}
        family = profile.get("family")
        self.family = family if isinstance(family, str) else None
        self.damped = Hold.from_json(profile.get("damped"))


@dataclass
class SignalState:
    """One distinct signal (an alert fingerprint, or an exact log/span text)."""

    key: str
    incident_id: str
    status: Status
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    dirty: bool = False
    # Read from the store by this batch: written back as an update; one that was not
    # is new to the store (its key names its scope, whose lock the batch holds).
    stored: bool = False


@dataclass
class ScopeModels:
    """What a scope has learned from its stream: log templates and the service graph.

    ``version`` is the store row's version when loaded; the store bumps it on save.
    """

    templater: Templater = field(default_factory=Templater)
    graph: ServiceGraph = field(default_factory=ServiceGraph)
    history: AlertHistory = field(default_factory=AlertHistory)
    version: int = 0
    dirty: bool = False


@dataclass
class CorrelationState:
    incidents: dict[str, IncidentState] = field(default_factory=dict)
    signals: dict[str, SignalState] = field(default_factory=dict)
    models: dict[str, ScopeModels] = field(default_factory=dict)
    # event id -> dedup key of the events being decided, when whoever loaded the state
    # computed them already (the store does, to load their signals): hashing an event's
    # key is a JSON dump and a digest, not worth doing twice per event.
    dedup_keys: dict[str, str] = field(default_factory=dict, repr=False)

    def add_incident(self, incident: IncidentState) -> None:
        self.incidents[incident.id] = incident

    def models_for(self, scope: str) -> ScopeModels:
        models = self.models.get(scope)
        if models is None:
            models = self.models[scope] = ScopeModels()
        return models

    def dirty_incidents(self) -> list[IncidentState]:
        return [i for i in self.incidents.values() if i.dirty]

    def dirty_signals(self) -> list[SignalState]:
        return [s for s in self.signals.values() if s.dirty]

    def dirty_models(self) -> dict[str, ScopeModels]:
        return {scope: m for scope, m in self.models.items() if m.dirty or m.templater.dirty or m.history.dirty}

    def clear_dirty(self) -> None:
        for inc in self.incidents.values():
            if inc.dirty:
                inc.linked_services = set(inc.services)
            inc.dirty = False
        for sig in self.signals.values():
            sig.dirty = False
        for models in self.models.values():
            models.dirty = False
            models.templater.dirty = False
            models.history.dirty = False
