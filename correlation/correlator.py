"""The correlation engine: events in, one decision per event out, with its evidence.

The hot path, per event, in this order:

1. **Duplicate suppression** (``duplicate``): the signal (alert fingerprint, or exact
   log/span text) is already known and live: an alert still firing, a log repeated
   within ``dedup_window``. A resolve for a firing alert (``alert_resolved``) lands on
   its incident, which resolves when the last of its alerts does.
2. **Templating**: the event's variable parts masked into a template id (log records
   through the ``TemplateMiner``, alert titles and spans through ``mask``); see
   ``templating``.
3. **Embedding per template**: the template's text through the embedder; only texts
   never seen go to the model, batched once per ``process_batch``.
4. **Candidates**: the incidents still accepting events that hold the event's service
   or a graph neighbour of it (a dict look-up), and the incidents whose template
   centroid is nearest the event's template (a faiss index), never a scan.
5. **Scoring** (``scoring``): text similarity, service-graph proximity over declared
   and trace-learned edges, time gap, shared identity labels; the best eligible
   candidate at or above ``threshold`` is joined (``correlated``), or one at its onset
   (``scoring.at_onset``); else a new group: an incident when a firing alert opens it
   (``new_incident``), else a noise group (``noise_group``) that pages nobody unless an
   alert joins it later.
6. **Decision** with its evidence: every component, the score, the threshold, the
   weights, the parameters version; ``explain()`` turns it into a sentence.

State lives in a ``CorrelationState`` (incidents, signals, the scope's learned
templates and service graph), loaded per batch by the store; this class keeps only
caches that it rebuilds from that state (the centroid index, the node index).
Time is always passed in, never read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial

import numpy as np

from triage.correlation.decision import Action, Decision
from triage.correlation.evidence import (
    Criteria, Duplicate, Evidence, GapFrom, Joined, Onset, Opened, PreviousEpisode, Resolve, Rule,
)
from triage.correlation.first_page import Paging
from triage.correlation.indexes import GraphDistances, ScopeIndex, learn_graph
from triage.correlation.similarity import TemplateVectors
from triage.correlation.holds import Hold, Release
from triage.correlation.identity import dedup_key, episode_ended, incident_id_for
from triage.domain.scope import scope_of
from triage.correlation.scoring import (GLOBAL_NODE, CandidateFit, EventFit, at_onset, footprint_key,
                                        fresh_precedent, identity_values, node_of, refused_downstream)
from triage.correlation.state import (
    CorrelationState, IncidentKind, IncidentState, IncidentStatus, ScopeModels, SignalState,
)
from triage.correlation.templating import Template, Templater
from triage.domain.event import Event, EventKind, Severity, Status
from triage.models.embedder import Embedder
from triage.models.alert_families import TemplateFamilies
from triage.models.index import centroid_of
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph

__all__ = ["Correlator", "node_of"]

_MAX_LABELS = 64            # identity values remembered per incident
_PRUNE_EVERY = 512          # events between two sweeps of the in-memory indexes
_PRUNE_SLACK = 3600.0       # keep incidents this long past their window (late events)
# Enum members the per-event path compares with: read from its class, a member costs
# three times a module global.
_INCIDENT, _NOISE, _FROM_TEMPLATE = IncidentKind.incident, IncidentKind.noise, GapFrom.template


def _seconds(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds(), 3)


def _rank(e: CandidateFit) -> tuple[bool, float, float, str]:
    """Precedent first, then score, then the older incident (then the id, for ties)."""
    return (e.gap_from is _FROM_TEMPLATE, e.score, e.incident_age_s, e.incident_id)


class Correlator:
    def __init__(
        self,
        parameters: CorrelationParameters | None = None,
        *,
        parameters_version: int = 0,
        state: CorrelationState | None = None,
        embedder: Embedder,
        topology: ServiceGraph | None = None,
        families: TemplateFamilies | None = None,
    ) -> None:
        self.parameters = parameters or CorrelationParameters()
        self.parameters_version = parameters_version
        # What every decision's evidence quotes of the parameters: built once, shared.
        self._criteria = Criteria.of(self.parameters, parameters_version)
        self._onset = Onset.of(self.parameters) if self.parameters.onset_window and self.parameters.onset_margin else None
        self.state = state if state is not None else CorrelationState()
        self.embedder = embedder
        self.topology = topology
        self.families = families
        self._scopes: dict[str, ScopeIndex] = {}
        self._prepared: dict[str, tuple[str, Template]] = {}   # event id -> (scope, template)
        self._texts = TemplateVectors(embedder, families)
        self._vector, self._similarity, self._families_of = (
            self._texts.vector, self._texts.similarity, self._texts.families_of)
        self._distances = GraphDistances(lambda scope: self.state.models_for(scope).graph, self.parameters.max_hops)
        self._distance = self._distances.distance
        self._since_prune = 0
        self._declared: set[int] = set()
        p = self.parameters
        # _accepting_until runs for every event: its windows as timedeltas, once
        self._windows = (timedelta(seconds=p.max_incident_age), timedelta(seconds=p.window),
                         timedelta(seconds=p.reopen_window), timedelta(seconds=p.lone_window))
        self._paging = Paging(p)
        self._index_new(self.state)

    def adopt(self, state: CorrelationState) -> None:
        """Decide the next batch on ``state``, keeping this correlator's indexes and caches
        (rebuilt per batch, they cost a quiet stream's one-event batches about a tenth of
        their time: docs/benchmarks.md, "Why the hot path is built as it is"). Only for a
        state whose incidents and models are, for every scope it will decide, the ones this
        correlator last decided on, as committed (the pipeline's ``ScopeCache`` hands a
        correlator back only then); for anything else, a new correlator."""
        self.state = state
        self._index_new(state)

    def _index_new(self, state: CorrelationState) -> None:
        for incident in state.incidents.values():
            if incident.accepting_until is not None and incident.id not in self._scope_index(incident.scope).members:
                self._index(incident)

    # -- the seam ------------------------------------------------------------------

    def process_batch(self, events: list[Event]) -> list[Decision]:
        """Decide a batch in event-time order, each at its own ``occurred_at``.

        Templates are learned first, in the same order, so that every template the
        batch brings is embedded in one call to the model."""
        ordered = sorted(events, key=lambda e: (e.occurred_at, e.id))
        self.prepare(ordered)
        return [self.process(e, now=e.occurred_at) for e in ordered]

    def prepare(self, events: Iterable[Event]) -> None:
        """Template ``events`` (in the order given) and embed the new templates at once."""
        texts: list[str] = []
        for event in events:
            scope = scope_of(event)
            template = self._templater(scope).template_of(event)
            self._prepared[event.id] = (scope, template)
            texts.append(template.text)
        missing = [t for t in dict.fromkeys(texts) if self.embedder.cached(t) is None]
        if missing:
            self.embedder.embed(missing)

    def process(self, event: Event, now: datetime) -> Decision:
        p = self.parameters
        prepared = self._prepared.pop(event.id, None)
        if prepared is not None:
            scope, template = prepared
            models = self.state.models_for(scope)
        else:
            scope = scope_of(event)
            models = self.state.models_for(scope)
            template = models.templater.template_of(event)
        key = self.state.dedup_keys.get(event.id) or dedup_key(event)
        signal = self.state.signals.get(key)
        incident = self.state.incidents.get(signal.incident_id) if signal else None
        previous_episode: PreviousEpisode | None = None   # an episode that ended without a resolve

        if signal is not None and incident is not None:
            if event.kind is EventKind.alert:
                if (event.status is Status.firing and signal.status is Status.firing
                        and (ended := episode_ended(event, signal.last_seen, now, p.resolve_timeout)) is not None):
                    # The episode we knew of is over though its resolve never reached us;
                    # this one is decided afresh.
                    self._lost_resolve(signal, incident)
                    previous_episode = PreviousEpisode(incident=incident.id, ended=ended)
                elif event.status is Status.resolved and signal.status is Status.firing:
                    return self._resolve(event, now, signal, incident, template)
                elif event.status is signal.status and (incident.is_open or signal.status is Status.resolved):
                    return self._duplicate(event, now, signal, incident, template,
                                           reason="same fingerprint, same status")
            elif (_seconds(now, signal.last_seen) <= p.dedup_window and incident.is_open
                  and incident.accepts(now)):
                return self._duplicate(event, now, signal, incident, template, reason="identical text")

        node = node_of(event)
        learn_graph(models, event, now, self.topology, self._declared)
        identity = identity_values(event.labels, event.host)
        fit = self._fit_for(scope, models, node, template)
        candidates = self._candidates(scope, models, node, template, fit.vector, now)
        # An incident that has shown this template on this service (within
        # resolve_timeout: ``fresh_precedent``) takes precedence; among equals the
        # best score, then the older incident. So when such
        # precedents exist and the best of them reaches the threshold, it is the decision
        # whatever the others score, and only they are scored: in a repetitive stream
        # that is most events. (An event older than a precedent's opening is not a
        # repeat of it: the general rule decides.)
        footprint = fit.precedent_key
        precedents = [i for i in candidates if fresh_precedent(i, footprint, now, p) is not None]
        best: CandidateFit | None = None
        fits: list[CandidateFit] = []
        firing = event.kind is EventKind.alert and event.status is Status.firing
        if precedents and all(i.opened_at <= now for i in precedents):
            best = fit.score(precedents[0], identity, now, firing) if len(precedents) == 1 \
                else max((fit.score(i, identity, now, firing) for i in precedents), key=_rank)
            if best.score < p.threshold:
                best = None
        onset: Onset | None = None
        downstream: Callable[[CandidateFit], bool] | None = None
        if best is None:
            fits = [fit.score(i, identity, now, firing) for i in candidates]
            best = max((e for e in fits if e.eligible), key=_rank, default=None)
            if best is None or best.score < p.threshold:
                downstream = None if event.kind is EventKind.alert else partial(self._downstream, models.graph, node)
                best, onset = at_onset(node, fits, best, self._onset, _rank, downstream, self._records_only)
        if best is not None and (best.score >= p.threshold or onset is not None):
            target = self.state.incidents[best.incident_id]
            # the first alert of a noise group makes it an incident
            promoted = firing and target.kind == _NOISE
            reopened, notify, hold, release = self._join(event, now, key, target, node, template, identity)
            # (positional arguments: built for most events, and keywords cost a tenth more)
            joined = Joined(scope, node, template.id, self._criteria, len(candidates), previous_episode,
                            best.candidate(), promoted, reopened, hold, release, onset)
            return self._decide(event, Action.attached, target, Rule.correlated, joined, notify)
        # Nothing fits: a new group. A firing alert opens an incident; anything else a
        # noise group, which pages nobody unless an alert joins it.
        is_alert = event.kind is EventKind.alert
        kind = IncidentKind.incident if is_alert and event.status is Status.firing else IncidentKind.noise
        new = IncidentState(
            id=incident_id_for(event.id), scope=scope, title=event.title, opened_at=now,
            last_event_at=now, severity=event.severity, kind=kind)
        if is_alert and event.status is Status.resolved:
            # A resolve for an alert never seen firing is history, not a problem.
            new.status, new.resolved_at = IncidentStatus.resolved, now
        self.state.add_incident(new)
        rejected = max(fits, key=lambda e: (e.score, e.incident_id), default=None)
        if rejected is not None:
            rejected = refused_downstream(node, rejected, self._onset, downstream)
        # (a new incident is open whenever a firing alert joins it: never reopened)
        _, notify, hold, _ = self._join(event, now, key, new, node, template, identity)
        opened = Opened(scope, node, template.id, self._criteria, len(candidates), previous_episode,
                        rejected.candidate() if rejected is not None else None, hold)
        rule = Rule.new_incident if kind == IncidentKind.incident else Rule.noise_group
        return self._decide(event, Action.opened, new, rule, opened, notify)

    def rebuild(self, incident: IncidentState, held: Iterable[tuple[Event, Rule | str, str | None]]) -> None:
        """Recompute an incident's counts, firing alerts, services and profile from the
        events it holds, given as (event, the rule that placed it, its template id), the
        way each joined: what a split leaves of an incident, and what it makes of the new
        one. ``incident.templates`` must name every template's text beforehand. One that
        holds alerts is open while one of them fires, else resolved at its last event (a
        group of logs and spans keeps its status); id, title, kind and paging stay the
        caller's to set."""
        texts = dict(incident.templates)
        ordered = sorted(held, key=lambda h: (h[0].occurred_at, h[0].id))
        if not ordered:
            raise ValueError(f"incident {incident.id} would hold no events")
        incident.opened_at = incident.last_event_at = ordered[0][0].occurred_at
        incident.event_count = incident.alert_count = incident.suppressed_count = 0
        incident.severity, incident.services, incident.firing = Severity.debug, set(), set()
        incident.nodes, incident.footprint, incident.templates, incident.labels = {}, {}, {}, {}
        incident.centroid = None
        self._scope_index(incident.scope).centroids.remove(incident.id)
        for event, rule, template_id in ordered:
            now, key = event.occurred_at, dedup_key(event)
            if rule == Rule.duplicate:
                incident.suppressed_count += 1
            elif rule == Rule.alert_resolved:
                incident.alert_count += 1
                incident.firing.discard(key)
            else:
                if event.kind is EventKind.alert:
                    incident.alert_count += 1
                    if event.status is Status.firing:
                        incident.firing.add(key)
                if template_id in texts:
                    self._profile(incident, node_of(event), Template(template_id, texts[template_id]),
                                  identity_values(event.labels, event.host), now)
            self._touch(event, now, incident)
        if incident.alert_count:
            firing = bool(incident.firing)
            incident.status = IncidentStatus.open if firing else IncidentStatus.resolved
            incident.resolved_at = None if firing else incident.last_event_at
            incident.accepting_until = self._accepting_until(incident)

    # -- candidates ----------------------------------------------------------------

    def _templater(self, scope: str) -> Templater:
        return self.state.models_for(scope).templater

    def _scope_index(self, scope: str) -> ScopeIndex:
        index = self._scopes.get(scope)
        if index is None:
            index = self._scopes[scope] = ScopeIndex(self.embedder.dim)
        return index

    def _candidates(self, scope: str, models: ScopeModels, node: str, template: Template,
                    vector: np.ndarray | None, now: datetime) -> list[IncidentState]:
        """The incidents accepting events at ``now`` that may fit: on the event's node or a
        graph neighbour (a dict look-up), or near its template (the centroid index)."""
        p = self.parameters
        index = self._scope_index(scope)
        self._since_prune += 1
        if self._since_prune >= _PRUNE_EVERY:
            self._prune(now)
        # Which incidents to score depends on the node, the template and the indexes, not
        # on the event: computed once per (node, template) until an index changes.
        stamp = (index.by_node_version, models.graph.version, index.centroids.version)
        cached = index.candidates.get((node, template.id))
        if cached is not None and cached[0] == stamp:
            candidates = cached[1]
        else:
            ids: set[str] = set()
            by_node = index.by_node
            for near in models.graph.hops_from(node, p.max_hops):
                found = by_node.get(near)
                if found:
                    ids.update(found)
            found = by_node.get(node)
            if found:
                ids.update(found)
            if vector is not None:   # (the correlator's fits always have one)
                ids.update(index.text_candidates(template.id, vector, p.centroid_radius))
            found = by_node.get(GLOBAL_NODE)   # a cluster alert's incident: young, it takes any service
            if found:
                ids.update(found)
            candidates = sorted(ids)
            if len(index.candidates) > 65536:
                index.candidates.clear()
            index.candidates[(node, template.id)] = (stamp, candidates)
        incidents = self.state.incidents
        return [i for i in map(incidents.get, candidates) if i is not None and i.accepts(now)]

    def _fit_for(self, scope: str, models: ScopeModels, node: str, template: Template) -> EventFit:
        """Scoring for (node, template) in ``scope``, kept per scope while the template's
        text and the scope's graph object are the same: the template's vector and fitted
        family are looked up once, not per event."""
        index = self._scope_index(scope)
        key = (node, template.id, template.text)
        fit = index.fits.get(key)
        if fit is None or fit.graph is not models.graph:
            vector, families = self._vector(template.text), self.families
            fit = EventFit(node, template.id, vector, models.graph, self.parameters, self._similarity,
                           families.family_of(template.text, vector) if families is not None else None,
                           self._families_of if families is not None else None, self._distance)
            if len(index.fits) > 65536:
                index.fits.clear()
            index.fits[key] = fit
        return fit

    def _index(self, incident: IncidentState) -> None:
        index = self._scope_index(incident.scope)
        index.members.add(incident.id)
        for node in incident.nodes:
            index.by_node[node].add(incident.id)
        index.by_node_version += 1
        if incident.centroid is not None:
            index.centroids.upsert(incident.id, np.asarray(incident.centroid, dtype=np.float32))
        elif incident.templates:
            self._update_centroid(incident)

    def _prune(self, now: datetime) -> None:
        """Forget incidents long past accepting events (the state keeps them)."""
        self._since_prune = 0
        horizon = now - timedelta(seconds=_PRUNE_SLACK)
        for models in self.state.models.values():
            models.history.prune(now, self.parameters.chronic_window)
        for index in self._scopes.values():
            stale = [i for i in index.members
                     if (inc := self.state.incidents.get(i)) is None
                     or inc.accepting_until is None or inc.accepting_until < horizon]
            if not stale:
                continue
            index.drop(stale)
            for incident_id in stale:
                self._texts.forget(incident_id)

    def _update_centroid(self, incident: IncidentState) -> None:
        centroid = centroid_of(np.stack([self._vector(t) for t in incident.templates.values()]))
        incident.centroid = [float(x) for x in centroid]
        self._scope_index(incident.scope).centroids.upsert(incident.id, centroid)

    # -- effects -------------------------------------------------------------------

    def _accepting_until(self, incident: IncidentState) -> datetime:
        max_age, window, reopen_window, lone_window = self._windows
        cap = incident.opened_at + max_age
        until = incident.last_event_at + window
        if not incident.is_open and incident.resolved_at is not None:
            until = min(until, incident.resolved_at + reopen_window)
        elif incident.kind == _NOISE and incident.event_count <= 1:
            until = incident.last_event_at + lone_window
        return min(until, cap)

    def _touch(self, event: Event, now: datetime, incident: IncidentState) -> None:
        incident.event_count += 1
        incident.last_event_at = max(incident.last_event_at, now)
        if event.service:
            incident.services.add(event.service)
        if event.severity.rank > incident.severity.rank:
            incident.severity = event.severity
        incident.accepting_until = self._accepting_until(incident)
        incident.dirty = True

    def _profile(self, incident: IncidentState, node: str, template: Template,
                 identity: frozenset[str], now: datetime) -> None:
        ts = now.timestamp()
        index = self._scope_index(incident.scope)
        if incident.id not in index.members:
            index.members.add(incident.id)
        if node not in incident.nodes:
            index.by_node[node].add(incident.id)
            index.by_node_version += 1
        incident.nodes[node] = max(ts, incident.nodes.get(node, ts))
        key = footprint_key(node, template.id)
        incident.footprint[key] = max(ts, incident.footprint.get(key, ts))
        if template.id not in incident.templates:
            incident.templates[template.id] = template.text
            self._update_centroid(incident)
        for value in identity:
            incident.labels[value] = max(ts, incident.labels.get(value, ts))
        if len(incident.labels) > _MAX_LABELS:
            keep = sorted(incident.labels.items(), key=lambda kv: (-kv[1], kv[0]))[:_MAX_LABELS]
            incident.labels = dict(keep)

    def _join(self, event: Event, now: datetime, key: str, incident: IncidentState, node: str,
              template: Template, identity: frozenset[str]) -> tuple[bool, bool, Hold | None, Release | None]:
        """The event joins ``incident`` (a new one or not): whether that re-opened it,
        whether a page (or page update) is due, why its first page is held (auto-pause,
        damping: ``first_page``) or what released a damped one."""
        is_alert = event.kind is EventKind.alert
        firing = is_alert and event.status is Status.firing
        reopened = False
        hold: Hold | None = None
        release: Release | None = None
        if incident.damped is not None and incident.event_count > 0:
            release = self._paging.changed(incident, event, footprint_key(node, template.id), now,
                                           self.state.models_for(incident.scope).history)
        if firing:
            opening = incident.kind == _NOISE or incident.event_count == 0
            if incident.kind == _NOISE:
                incident.kind, incident.title = _INCIDENT, event.title
            if not incident.is_open:  # a flapping alert re-fires into its resolved incident
                incident.status, incident.resolved_at = IncidentStatus.open, None
                reopened = True
                if incident.transient:   # it never paged: its pause starts again
                    incident.transient, incident.page_due_at = False, None
            hold = self._paging.firing(incident, event, footprint_key(node, template.id), now,
                                       self.state.models_for(incident.scope).history, opening=opening)
            incident.firing.add(key)
        if is_alert:
            incident.alert_count += 1
        self._profile(incident, node, template, identity, now)
        self._touch(event, now, incident)
        before = self.state.signals.get(key)   # a signal seen before, decided afresh
        self.state.signals[key] = SignalState(key=key, incident_id=incident.id, status=event.status,
                                              first_seen=now, last_seen=now, dirty=True,
                                              stored=before is not None and before.stored)
        return reopened, firing and self._paging.due(incident, now, new_alert=True), hold, release

    def _duplicate(self, event: Event, now: datetime, signal: SignalState,
                   incident: IncidentState, template: Template, reason: str) -> Decision:
        self._touch(event, now, incident)
        incident.suppressed_count += 1
        evidence = Duplicate(signal.key, template.id, reason, signal.first_seen, signal.count,
                             _seconds(now, signal.last_seen))
        signal.count += 1
        signal.last_seen = max(signal.last_seen, now)
        signal.dirty = True
        notify = event.kind is EventKind.alert and self._paging.due(incident, now, new_alert=False)
        return self._decide(event, Action.suppressed, incident, Rule.duplicate, evidence, notify)

    def _resolve(self, event: Event, now: datetime, signal: SignalState, incident: IncidentState,
                 template: Template) -> Decision:
        incident.alert_count += 1
        signal.status, signal.last_seen, signal.dirty = Status.resolved, now, True
        signal.count += 1
        incident.firing.discard(signal.key)
        resolved = transient = False
        if not incident.firing and incident.is_open:
            incident.status, incident.resolved_at = IncidentStatus.resolved, now
            resolved = True
            if incident.kind == IncidentKind.incident and incident.last_notified_at is None and incident.damped is None:
                incident.transient = transient = True   # resolved before its page was due: nobody paged
            self._paging.resolved(incident, now, self.state.models_for(incident.scope).history)
        evidence = Resolve(dedup_key=signal.key, template=template.id, still_firing=len(incident.firing),
                           incident_resolved=resolved, transient=transient)
        self._touch(event, now, incident)
        return self._decide(event, Action.attached, incident, Rule.alert_resolved, evidence, notify=False)

    def _lost_resolve(self, signal: SignalState, incident: IncidentState) -> None:
        signal.status, signal.dirty = Status.resolved, True
        incident.firing.discard(signal.key)
        if not incident.firing and incident.is_open:
            incident.status, incident.resolved_at = IncidentStatus.resolved, signal.last_seen
            incident.accepting_until = self._accepting_until(incident)
            self._paging.resolved(incident, signal.last_seen, self.state.models_for(incident.scope).history)
        incident.dirty = True

    def _records_only(self, fit: CandidateFit) -> bool:
        """Whether ``fit``'s group is still records: no alert has made it an incident."""
        return self.state.incidents[fit.incident_id].kind == _NOISE

    def _downstream(self, graph: ServiceGraph, node: str, fit: CandidateFit) -> bool:
        """``node`` is, next to ``fit``'s incident, only a callee of its nodes: each of them
        adjacent to it calls it, and it calls none of them."""
        near = [n for n in self.state.incidents[fit.incident_id].nodes if graph.adjacent(node, n)]
        return bool(near) and all(graph.calls(n, node) and not graph.calls(node, n) for n in near)

    def _decide(self, event: Event, action: Action, incident: IncidentState, rule: Rule,
                evidence: Evidence, notify: bool) -> Decision:
        return Decision(event_id=event.id, action=action, incident_id=incident.id, rule=rule,
                        evidence=evidence, parameters_version=self.parameters_version, notify=notify)
