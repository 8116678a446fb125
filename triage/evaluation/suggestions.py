"""Scoring triage's answers to an on-call engineer's first questions on labeled streams:
probable cause, owner team, responders, remediations and similar past incidents.

``triage eval suggest DIR`` replays DIR's events through triage's correlator (change
records taken out first, as the pipeline does: a change never joins an incident), then
walks DIR/incidents.jsonl in the order the incidents started. For each incident it asks
triage what it knew when the incident first paged: the triage incident that the
incident's first alert joined, its events from ``PAGE_LOOKBACK`` before that alert to
``PAGE_HORIZON`` after it (``models.triage_context.page_view``), the host and cluster
alerts of other incidents around it (``platform_signals``), the changes recorded by then,
the catalog (DIR/services.yaml), the hosts' zones (DIR/topology.json when there is one, as
a deployment's ``TRIAGE_TOPOLOGY_FILE`` declares them) and every incident resolved before
(its responder and resolution note, as a PagerDuty webhook or ``POST
/incidents/{id}/resolution`` would report them). The truth labels
only say which incident is which and score the answer; no answer is built from them.

Scored per incident (``--json`` keys in brackets):

* probable cause top-1 / top-3 [``probable_cause_top1``, ``probable_cause_top3``]:
  ``root_cause.component`` first / among the first three;
* team@1 [``team_at_1``]: the suggested team is ``owner_team`` (the team owning the root
  component, the one to page);
* person@1 / @3 [``person_at_1``, ``person_at_3``]: ``responder`` first / in the first
  three, over the incidents with a responder;
* remediation@3 [``remediation_at_3``]: over recurring incidents (an earlier incident
  had the same ``problem_id``), the first three suggestions hold a resolution note of
  such an earlier incident;
* the mean confidence triage gave its first person [``person_confidence_at_1``], to
  read next to person@1 (calibrated: about as high as person@1);
* similar recall@5 [``similar_recall_at_5``]: ../shared/data/README.md's definition
  (relevant: earlier incidents with the same ``root_cause.component`` and ``kind``).

Baselines in the same run, with no model: the first-alerting component as the cause and
its catalog owners as team and people (``catalog-owner``); the responder who resolved
most incidents so far (``most-frequent``); the latest incidents sharing a service with
this one, and their notes (``latest-same-services``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from triage.correlation.correlator import Correlator
from triage.domain.change import Change, change_from_event
from triage.domain.event import Event, EventKind, Status
from triage.evaluation.alerts import load_labeled_events, time_order
from triage.evaluation.metrics import format_table
from triage.models.catalog import Catalog
from triage.models.embedder import Embedder
from triage.models.index import centroid_of
from triage.models.parameters import CorrelationParameters
from triage.models.probable_cause import component_owner, signals_from_events
from triage.models.topology import host_zones
from triage.models.triage_context import PAGE_HORIZON as HORIZON
from triage.models.triage_context import PLATFORM_LOOKBACK, Triager, page_view, platform_signals

INCIDENTS_FILE = "incidents.jsonl"
CATALOG_FILE = "services.yaml"
TOPOLOGY_FILE = "topology.json"   # hosts' zones, as a deployment's TRIAGE_TOPOLOGY_FILE declares them


@dataclass(frozen=True)
class TruthIncident:
    id: str
    problem_id: str | None
    started_at: datetime
    resolved_at: datetime
    responder: str | None
    resolution_note: str | None
    component: str | None = None
    kind: str | None = None
    owner_team: str | None = None
    services: tuple[str, ...] = ()


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected an RFC 3339 time, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where}: not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{where}: time without a UTC offset: {value!r}")
    return parsed


def load_truth_incidents(dir: Path) -> list[TruthIncident]:
    """DIR/incidents.jsonl: ``id``, ``started_at`` and ``resolved_at`` required;
    ``responder``, ``resolution_note`` and ``problem_id`` when known."""
    path = Path(dir) / INCIDENTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{dir}: no {INCIDENTS_FILE}")
    out = []
    with path.open(encoding="utf-8") as lines:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON: {exc}") from None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise ValueError(f"{where}: expected an object with a string 'id'")
            out.append(TruthIncident(
                id=row["id"], problem_id=row.get("problem_id"),
                started_at=_time(row.get("started_at"), f"{where}: started_at"),
                resolved_at=_time(row.get("resolved_at"), f"{where}: resolved_at"),
                responder=row.get("responder") or None, resolution_note=row.get("resolution_note") or None,
                component=(row.get("root_cause") or {}).get("component"), kind=(row.get("root_cause") or {}).get("kind"),
                owner_team=row.get("owner_team"), services=tuple(row.get("services") or ())))
    return sorted(out, key=lambda t: (t.started_at, t.id))




@dataclass
class _Query:
    """An incident as triage saw it when it first paged."""

    events: list[Event]
    anchor: Event             # its first alert (or first event)
    title: str
    texts: list[str]          # templates of its events, first seen first


def _replay(events: list[Event], truth: list[str], parameters: CorrelationParameters,
            embedder: Embedder) -> tuple[dict[str, _Query], list[Change]]:
    """Correlate the stream (changes taken out, as the pipeline does) and cut out each
    labeled incident's view at its first page."""
    changes: list[Change] = []
    kept: list[int] = []
    for i, event in enumerate(events):
        change = change_from_event(event)
        if change is not None:
            changes.append(change)
        else:
            kept.append(i)
    stream = [events[i] for i in kept]
    correlator = Correlator(parameters, embedder=embedder)
    decisions = correlator.process_batch(stream)
    incident_of: dict[int, str] = {}
    template_of: dict[int, str] = {}
    members: dict[str, list[int]] = defaultdict(list)
    for j, decision in zip(time_order(stream), decisions, strict=True):
        i = kept[j]
        incident_of[i] = decision.incident_id
        template_of[i] = decision.template or ""
        members[decision.incident_id].append(i)
    anchors: dict[str, int] = {}
    for i in sorted(incident_of, key=lambda i: (events[i].occurred_at, events[i].id)):
        label = truth[i]
        event = events[i]
        is_alert = event.kind is EventKind.alert and event.status is Status.firing
        current = anchors.get(label)
        if current is None or (is_alert and events[current].kind is not EventKind.alert):
            anchors[label] = i
    queries: dict[str, _Query] = {}
    for label, a in anchors.items():
        anchor = events[a]
        incident_id = incident_of[a]
        state = correlator.state.incidents[incident_id]
        view = page_view([events[i] for i in members[incident_id]], anchor)
        in_view = {e.id for e in view[1]} if view else set()
        seen = [i for i in members[incident_id] if events[i].id in in_view]
        texts = list(dict.fromkeys(state.templates[template_of[i]] for i in seen if template_of[i] in state.templates))
        queries[label] = _Query([events[i] for i in seen], anchor, state.title, texts)
    return queries, sorted(changes, key=lambda c: (c.occurred_at, c.id))


def _first_alerting(query: _Query, catalog: Catalog) -> str | None:
    """The catalog entry of the query's first alert (a host or cluster alert: the platform)."""
    signals = signals_from_events([query.anchor], catalog)
    return component_owner(signals[0].component, signals[0].type, catalog) if signals else None


def evaluate_suggestions(dir: Path, parameters: CorrelationParameters | None = None, *,
                         embedder: Embedder) -> list[dict[str, Any]]:
    """Rows for DIR: triage, then the baselines (see the module's docstring)."""
    directory = Path(dir)
    params = parameters or CorrelationParameters()
    incidents = load_truth_incidents(directory)
    catalog_path = directory / CATALOG_FILE
    catalog = Catalog.from_yaml(catalog_path.read_text(encoding="utf-8")) if catalog_path.is_file() else Catalog()
    events, truth = load_labeled_events(directory)
    queries, changes = _replay(events, truth, params, embedder)
    platform = [e for e in events if e.kind is EventKind.alert and not e.service]   # host and cluster alerts
    topology_path = directory / TOPOLOGY_FILE
    triager = Triager(catalog, zones=host_zones(topology_path) if topology_path.is_file() else None)
    profiles: dict[str, Any] = {}
    learned: list[TruthIncident] = []
    pending = sorted((t for t in incidents if t.id in queries), key=lambda t: (t.resolved_at, t.id))
    engines = ("triage", "catalog-owner", "most-frequent", "latest-same-services")
    scores: dict[str, defaultdict[str, float]] = {name: defaultdict(float) for name in engines}
    confidence = 0.0
    for incident in incidents:
        while pending and pending[0].resolved_at <= incident.started_at:
            done = pending.pop(0)
            if done.id in profiles:
                triager.learn(profiles[done.id], responder=done.responder, note=done.resolution_note,
                              resolved_at=done.resolved_at)
            learned.append(done)
        query = queries.get(incident.id)
        if query is None:
            continue   # none of its events reached triage
        now = query.anchor.occurred_at + HORIZON
        vector = centroid_of(embedder.embed(query.texts)) if query.texts else None
        known = [c for c in changes if c.occurred_at <= now]
        start = min(e.occurred_at for e in query.events) if query.events else query.anchor.occurred_at
        nearby = [e for e in platform if start - PLATFORM_LOOKBACK <= e.occurred_at <= now]
        context = triager.triage(incident.id, query.events, now=now, vector=vector, changes=known,
                                 title=query.title, started_at=query.anchor.occurred_at,
                                 platform=platform_signals(nearby, query.events, start=start, now=now))
        profiles[incident.id] = context.profile
        relevant = {t.id for t in learned if t.component == incident.component and t.kind == incident.kind}
        same_problem = {t.resolution_note for t in learned
                        if incident.problem_id and t.problem_id == incident.problem_id and t.resolution_note}
        first = _first_alerting(query, catalog)
        first_entry = catalog.service(first)
        shared = [t for t in sorted(learned, key=lambda t: (t.started_at, t.id), reverse=True)
                  if set(t.services) & {e.service for e in query.events if e.service}]
        answers: dict[str, dict[str, Any]] = {
            "triage": {"causes": [c.component for c in context.probable_causes], "team": context.responders.team,
                       "people": [p.person for p in context.responders.people],
                       "remediations": [r.text for r in context.remediations[:3]],
                       "similar": [m.incident.profile.incident_id for m in context.similar[:5]]},
            "catalog-owner": {"causes": [s.component for s in signals_from_events([query.anchor], catalog)],
                              "team": first_entry.team if first_entry else None,
                              "people": list(first_entry.owners) if first_entry else []},
            "most-frequent": {"people": [p for p, _ in sorted(Counter(t.responder for t in learned if t.responder)
                                                              .items(), key=lambda kv: (-kv[1], kv[0]))]},
            "latest-same-services": {"similar": [t.id for t in shared[:5]],
                                     "remediations": [t.resolution_note for t in shared if t.resolution_note][:3]},
        }
        if context.responders.people:
            confidence += context.responders.people[0].confidence
        for name, answer in answers.items():
            s = scores[name]
            s["incidents"] += 1
            if "causes" in answer:
                s["pc"] += 1
                s["pc1"] += incident.component in answer["causes"][:1]
                s["pc3"] += incident.component in answer["causes"][:3]
            if "team" in answer and incident.owner_team:
                s["team"] += 1
                s["team1"] += answer["team"] is not None and answer["team"] == incident.owner_team
            if "people" in answer and incident.responder:
                s["people"] += 1
                s["person1"] += incident.responder in answer["people"][:1]
                s["person3"] += incident.responder in answer["people"][:3]
            if "remediations" in answer and same_problem:
                s["recurring"] += 1
                s["rem3"] += bool(same_problem & set(answer["remediations"][:3]))
            if "similar" in answer and relevant:
                s["with_similar"] += 1
                s["recall5"] += len(relevant & set(answer["similar"][:5])) / min(5, len(relevant))
    rows = [_row(directory.resolve().name, name, s) for name, s in scores.items()]
    people = scores["triage"]["people"]
    for row in rows:   # how sure triage said it was of its first person (triage alone states one)
        row["person_confidence_at_1"] = (confidence / people if people else None) if row["engine"] == "triage" else None
    return rows


def _row(dataset: str, engine: str, s: defaultdict[str, float]) -> dict[str, Any]:
    def share(key: str, of: str) -> float | None:
        return s[key] / s[of] if s[of] else None   # nothing to score: no figure, not a zero
    return {"dataset": dataset, "engine": engine, "incidents": int(s["incidents"]),
            "probable_cause_top1": share("pc1", "pc"), "probable_cause_top3": share("pc3", "pc"),
            "team_at_1": share("team1", "team"),
            "person_at_1": share("person1", "people"), "person_at_3": share("person3", "people"),
            "recurring": int(s["recurring"]), "remediation_at_3": share("rem3", "recurring"),
            "with_similar": int(s["with_similar"]), "similar_recall_at_5": share("recall5", "with_similar")}


SUGGEST_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("dataset", "dataset", "s"),
    ("engine", "engine", "s"),
    ("incidents", "incidents", "d"),
    ("probable_cause_top1", "cause@1", ".3f"),
    ("probable_cause_top3", "cause@3", ".3f"),
    ("team_at_1", "team@1", ".3f"),
    ("person_at_1", "person@1", ".3f"),
    ("person_at_3", "person@3", ".3f"),
    ("person_confidence_at_1", "conf@1", ".3f"),
    ("recurring", "recurring", "d"),
    ("remediation_at_3", "remediation@3", ".3f"),
    ("with_similar", "with similar", "d"),
    ("similar_recall_at_5", "similar recall@5", ".3f"),
)


def format_suggestions_table(rows: list[dict[str, Any]]) -> str:
    return format_table(rows, SUGGEST_COLUMNS)


__all__ = ["evaluate_suggestions", "format_suggestions_table", "load_truth_incidents"]
