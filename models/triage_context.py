"""Everything an on-call engineer asks first about an incident, composed in one place:
what broke first (probable cause), what changed (recent changes), who owns it and who
should respond, what fixed it last time (remediations) and which past incidents were
like it.

``Triager`` holds what is learned from feedback (the similar-incident index and the
responder model) and composes a ``TriageContext`` from an incident's events as triage
saw them, the catalog and the changes. The service layer
(``triage.services.triage_context``) feeds it from the store; ``triage eval suggest``
feeds it from a labeled replay, so both answer with the same code. Pure: times are
passed in.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from triage.domain.change import Change
from triage.domain.event import Event, EventKind, Status
from triage.models.catalog import Catalog
from triage.models.probable_cause import (CallGraph, CauseCandidate, CauseParameters, Signal, component_owner,
                                          evidence_graph_edges, rank_causes, signals_from_events)
from triage.models.responders import PastResolution, ResponderModel, ResponderSuggestion
from triage.models.similar import PastIncident, Remediation, SimilarIndex, SimilarMatch, TriageProfile, rank_remediations

__all__ = ["PAGE_HORIZON", "PAGE_LOOKBACK", "PLATFORM_LOOKBACK", "RankedChange", "TriageContext", "Triager",
           "page_view", "platform_signals"]

CHANGE_LOOKBACK = timedelta(hours=2)
# What triage knew when an incident first paged: its events from PAGE_LOOKBACK before its
# first alert (the first signs often come as errors before an alert fires) to
# PAGE_HORIZON after it (the first page and the first look at it).
PAGE_LOOKBACK = timedelta(minutes=2)
PAGE_HORIZON = timedelta(minutes=5)
# How far back a host or cluster alert of another incident may have started and still be
# firing when this one pages (a node under memory pressure for hours).
PLATFORM_LOOKBACK = timedelta(hours=6)
_WORDS = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class RankedChange:
    change: Change
    distance: int          # graph hops from the incident's components (0: on one of them)
    evidence: str


@dataclass(frozen=True)
class TriageContext:
    incident_id: str
    probable_causes: tuple[CauseCandidate, ...]
    owner_entry: str | None             # the catalog entry answering for the first cause
    recent_changes: tuple[RankedChange, ...]
    responders: ResponderSuggestion
    remediations: tuple[Remediation, ...]
    similar: tuple[SimilarMatch, ...]
    profile: TriageProfile

    def document(self) -> dict[str, Any]:
        """As JSON: the fields of ``GET /incidents/{id}``'s ``triage`` and of a page's
        ``custom_details``."""
        return {
            "probable_cause": [{"component": c.component, "type": c.type.value, "confidence": c.confidence,
                                "score": c.score, "first_seen": c.first_seen.isoformat(),
                                "evidence": list(c.evidence)} for c in self.probable_causes],
            "owner_team": self.responders.team,
            "owner_team_evidence": self.responders.team_evidence,
            "recent_changes": [{"id": r.change.id, "service": r.change.service, "kind": r.change.kind.value,
                                "occurred_at": r.change.occurred_at.isoformat(), "summary": r.change.summary,
                                "version": r.change.version, "who": r.change.who, "link": r.change.link,
                                "distance": r.distance, "evidence": r.evidence} for r in self.recent_changes],
            "responders": [{"person": p.person, "confidence": p.confidence, "evidence": list(p.evidence)}
                           for p in self.responders.people],
            "remediations": [{"text": r.text, "source": r.source.value, "url": r.url, "evidence": r.evidence,
                              "from_incident": r.from_incident} for r in self.remediations],
            "similar_incidents": [{"incident_id": m.incident.profile.incident_id, "score": m.score,
                                   "title": m.incident.profile.title,
                                   "probable_cause": m.incident.profile.causes[0] if m.incident.profile.causes else None,
                                   "responder": m.incident.responder, "resolution_note": m.incident.note,
                                   "evidence": list(m.evidence)} for m in self.similar],
        }


def _hops(graph: CallGraph, sources: set[str], limit: int = 2) -> dict[str, int]:
    """Undirected hop distance from ``sources`` over the call graph, up to ``limit``."""
    adjacent: dict[str, set[str]] = {}
    for caller, callees in graph.callees.items():
        for callee in callees:
            adjacent.setdefault(caller, set()).add(callee)
            adjacent.setdefault(callee, set()).add(caller)
    dist = {s: 0 for s in sources}
    frontier = set(sources)
    for hop in range(1, limit + 1):
        frontier = {n for f in frontier for n in adjacent.get(f, ()) if n not in dist}
        for n in frontier:
            dist[n] = hop
    return dist


def rank_changes(changes: Sequence[Change], components: set[str], graph: CallGraph, start: datetime,
                 catalog: Catalog, lookback: timedelta = CHANGE_LOOKBACK) -> list[RankedChange]:
    """Changes on the incident's components and their neighbours in ``lookback`` before
    it started (or since), nearest in the graph first, then newest."""
    dist = _hops(graph, components)
    out = []
    for change in changes:
        if change.service is None or not (start - lookback <= change.occurred_at <= start + lookback):
            continue
        entry = catalog.service(change.service)
        name = entry.name if entry is not None else change.service
        if name not in dist:
            continue
        ago = (start - change.occurred_at).total_seconds()
        when = f"{abs(ago) / 60:.0f} min {'before' if ago >= 0 else 'after'} the incident started"
        where = "on a component of the incident" if dist[name] == 0 else f"{dist[name]} hop(s) from the incident's components"
        out.append(RankedChange(change, dist[name], f"{name}: {when}, {where}"))
    out.sort(key=lambda r: (r.distance, -r.change.occurred_at.timestamp(), r.change.id))
    return out


def page_view(events: Sequence[Event], anchor: Event | None = None) -> tuple[Event, list[Event]] | None:
    """The incident's first firing alert (``anchor`` if given; else its first event) and
    its events around it, as the first page saw them; None without events."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.id))
    if not ordered:
        return None
    if anchor is None:
        anchor = next((e for e in ordered if e.kind is EventKind.alert and e.status is Status.firing), ordered[0])
    lo, hi = anchor.occurred_at - PAGE_LOOKBACK, anchor.occurred_at + PAGE_HORIZON
    return anchor, [e for e in ordered if lo <= e.occurred_at <= hi]


def _episode_key(event: Event) -> str:
    return event.fingerprint or f"{event.labels.get('alertname') or event.title}\x00{event.host or ''}"


def cleared_hosts(events: Iterable[Event]) -> dict[str, datetime]:
    """host -> when its node alerts (alerts with a host and no service) among ``events``
    had all resolved, for the hosts whose alerts cleared while one of the incident's
    service alerts went on firing: the trouble outlived them."""
    node: dict[str, dict[str, Event]] = defaultdict(dict)    # host -> episode -> its last event
    service: dict[str, list[Event]] = defaultdict(list)      # episode -> its events
    for event in sorted(events, key=lambda e: (e.occurred_at, e.id)):
        if event.kind is not EventKind.alert:
            continue
        if event.service:
            service[_episode_key(event)].append(event)
        elif host := event.labels.get("node") or event.host:
            node[str(host)][_episode_key(event)] = event
    cleared: dict[str, datetime] = {}
    for host, episodes in node.items():
        if not all(e.status is Status.resolved for e in episodes.values()):
            continue
        at = max(e.occurred_at for e in episodes.values())
        if any(_firing_at(seen, at) for seen in service.values()):
            cleared[host] = at
    return cleared


def _firing_at(episode: Sequence[Event], at: datetime) -> bool:
    """Whether an alert (its events in time order) was firing at ``at``."""
    last = next((e for e in reversed(episode) if e.occurred_at <= at), None)
    return last is not None and last.status is Status.firing


def platform_signals(events: Iterable[Event], own: Iterable[Event], *, start: datetime,
                     now: datetime) -> list[Signal]:
    """The host and cluster alerts (no service) of other incidents firing at some time
    between ``start`` and ``now``: each episode (one fingerprint from firing to resolved)
    once, at its first firing, from ``events`` (those of ``PLATFORM_LOOKBACK`` before
    ``start`` suffice); the episodes of ``own`` (the incident's events) left out."""
    mine = {_episode_key(e) for e in own if e.kind is EventKind.alert and not e.service}
    firing: dict[str, Event] = {}
    active: list[Event] = []
    for event in sorted(events, key=lambda e: (e.occurred_at, e.id)):
        if event.kind is not EventKind.alert or event.service or event.occurred_at > now:
            continue
        key = _episode_key(event)
        if key in mine:
            continue
        if event.status is Status.firing:
            firing.setdefault(key, event)
        elif (began := firing.pop(key, None)) is not None and event.occurred_at >= start:
            active.append(began)
    active.extend(firing.values())
    return signals_from_events(active)


class Triager:
    def __init__(self, catalog: Catalog | None = None, cause_parameters: CauseParameters | None = None,
                 zones: Mapping[str, str] | None = None) -> None:
        self.catalog = catalog or Catalog()
        self.zones = dict(zones or {})   # host -> availability zone, as declared (TRIAGE_TOPOLOGY_FILE)
        self.cause_parameters = cause_parameters or CauseParameters()
        self.similar = SimilarIndex()
        self.responders = ResponderModel()
        self.graph_edges: set[tuple[str, str]] = set()   # caller -> callee seen in spans

    def profile(self, incident_id: str, started_at: datetime, events: Sequence[Event],
                vector: np.ndarray | None, causes: Sequence[CauseCandidate], title: str = "") -> TriageProfile:
        first = causes[0] if causes else None
        words: set[str] = set()
        if first is not None:
            for signal in signals_from_events(events, self.catalog):
                if signal.component == first.component:
                    words.update(w for w in _WORDS.findall(f"{signal.name} {signal.text}".lower()) if len(w) >= 3)
        return TriageProfile(
            incident_id=incident_id, started_at=started_at, causes=tuple(c.component for c in causes),
            alert_names=frozenset(str(e.labels.get("alertname") or e.title)[:120] for e in events
                                  if e.kind is EventKind.alert),
            services=frozenset(e.service for e in events if e.service), vector=vector, title=title,
            owner=component_owner(first.component, first.type, self.catalog) if first is not None else None,
            cause_words=frozenset(words))

    def learn(self, profile: TriageProfile, *, responder: str | None, note: str | None,
              resolved_at: datetime) -> None:
        """What triage learned when ``profile``'s incident was resolved."""
        self.similar.learn_one(PastIncident(profile, responder, note, resolved_at))
        if responder:
            teams = [t.name for t in self.catalog.teams.values() if responder in t.members]
            entry = self.catalog.service(profile.owner)
            team = teams[0] if len(teams) == 1 else entry.team if entry is not None else None
            owner_team = entry.team if entry is not None else None
            self.responders.learn_one(PastResolution(profile.incident_id, team, responder, resolved_at,
                                                     owner_team if owner_team != team else None))

    def triage(self, incident_id: str, events: Sequence[Event], *, now: datetime,
               vector: np.ndarray | None = None, changes: Sequence[Change] = (), title: str = "",
               started_at: datetime | None = None, platform: Sequence[Signal] = ()) -> TriageContext:
        """The context of the incident ``events`` describe (as triage saw them by ``now``);
        ``platform``: the host and cluster alerts of other incidents around it
        (``platform_signals``)."""
        self.graph_edges.update(evidence_graph_edges(events))
        graph = CallGraph.of(self.catalog, self.graph_edges)
        signals = signals_from_events(events, self.catalog)
        causes = rank_causes(signals, graph, changes, self.cause_parameters, self.catalog, self.zones, platform,
                             cleared_hosts(events))
        start = started_at or (min(e.occurred_at for e in events) if events else now)
        profile = self.profile(incident_id, start, events, vector, causes, title)
        similar = self.similar.search(profile)
        owner = profile.owner
        responders = self.responders.suggest(now=now, catalog=self.catalog, component=owner,
                                             similar=[(m.incident.profile.incident_id, m.score) for m in similar])
        components = {s.component for s in signals}
        neighbours = sorted(n for n, d in _hops(graph, {owner} if owner else set(), 1).items() if d == 1)
        texts = [str(e.labels.get("alertname") or e.title) for e in events if e.kind is EventKind.alert][:200]
        annotations = list(dict.fromkeys(
            (str(e.labels.get("alertname") or e.title), str(url)) for e in events
            if isinstance(url := e.labels.get("runbook_url"), str) and url))[:3]
        remediations = rank_remediations(similar=similar, causes=profile.causes, catalog=self.catalog,
                                         cause_entry=owner, neighbours=neighbours, texts=texts,
                                         annotations=annotations)
        recent = rank_changes(changes, components, graph, start, self.catalog)
        return TriageContext(incident_id, tuple(causes), owner, tuple(recent[:5]), responders,
                             tuple(remediations), tuple(similar), profile)

