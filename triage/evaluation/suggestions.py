"""Scoring suggested responders and similar past incidents on labeled alert streams.

``triage eval suggest DIR`` replays DIR's events through triage's correlator, then walks
DIR/incidents.jsonl in the order the incidents started. Before each incident it teaches
the recommender every incident resolved by then (its responder and resolution note, as
a PagerDuty webhook or ``POST /incidents/{id}/resolution`` would), then asks it about
this one, described as triage saw it: the templates and services of the triage incident
holding most of its events, over that incident's first ``window`` seconds (what the
first page and the first look at it show). It never sees the answer or a later event.

Scored per truth incident:

* responder hit@1 / hit@3: the incident's actual responder among the first suggestions;
* same problem @1 / @3, over the incidents whose problem (``problem_id``) had occurred
  before: the most similar past incident(s) were that same problem, so their notes are
  the remediation that worked last time;
* coverage: the share of incidents that got any suggestion at all.

Next to it, baselines that need no model: the responder who resolved most incidents so
far, and the most recent past incidents on one of the incident's services.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from triage.correlation.correlator import Correlator
from triage.evaluation.alerts import time_order, load_labeled_events
from triage.evaluation.metrics import format_table
from triage.domain.event import Event
from triage.models.embedder import Embedder
from triage.models.index import centroid_of
from triage.models.parameters import CorrelationParameters
from triage.models.recommender import IncidentProfile, Recommender, Resolution

INCIDENTS_FILE = "incidents.jsonl"


@dataclass(frozen=True)
class TruthIncident:
    id: str
    problem_id: str | None
    started_at: datetime
    resolved_at: datetime
    responder: str | None
    resolution_note: str | None


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
                responder=row.get("responder") or None, resolution_note=row.get("resolution_note") or None))
    return sorted(out, key=lambda t: (t.started_at, t.id))


def _profiles(events: list[Event], truth: list[str], parameters: CorrelationParameters,
              embedder: Embedder) -> dict[str, IncidentProfile]:
    """Each truth incident as triage saw it: the triage incident holding most of its
    events, over that incident's first ``window`` seconds."""
    correlator = Correlator(parameters, embedder=embedder)
    decisions = correlator.process_batch(events)
    members: dict[str, list[int]] = defaultdict(list)       # triage incident -> event indices, in time
    votes: dict[str, Counter[str]] = defaultdict(Counter)   # truth incident -> triage incidents
    template_of: dict[int, str] = {}
    for index, decision in zip(time_order(events), decisions, strict=True):
        members[decision.incident_id].append(index)
        votes[truth[index]][decision.incident_id] += 1
        template_of[index] = decision.template or ""
    horizon = timedelta(seconds=parameters.window)
    profiles = {}
    for truth_id, counter in votes.items():
        incident_id = min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        incident = correlator.state.incidents[incident_id]
        first = events[members[incident_id][0]].occurred_at
        seen = [i for i in members[incident_id] if events[i].occurred_at <= first + horizon]
        texts = list(dict.fromkeys(incident.templates[template_of[i]] for i in seen
                                   if template_of[i] in incident.templates))
        vector = centroid_of(embedder.embed(texts)) if texts else None
        services = tuple(sorted({s for i in seen if (s := events[i].service)}))
        profiles[truth_id] = IncidentProfile(truth_id, vector, services, incident.title)
    return profiles


def evaluate_suggestions(dir: Path, parameters: CorrelationParameters | None = None, *,
                         embedder: Embedder) -> list[dict[str, Any]]:
    """Two rows for DIR: triage's recommender (on ``embedder``'s centroids) and the no-model baselines."""
    directory = Path(dir)
    params = parameters or CorrelationParameters()
    incidents = load_truth_incidents(directory)
    events, truth = load_labeled_events(directory)
    profiles = _profiles(events, truth, params, embedder)
    recommender = Recommender(embedder.dim, neighbours=params.suggest_neighbours,
                              min_similarity=params.suggest_min_similarity)
    learned: list[TruthIncident] = []
    pending = sorted((t for t in incidents if t.id in profiles), key=lambda t: (t.resolved_at, t.id))
    scores = {name: Counter[str]() for name in ("triage", "baseline")}
    for incident in incidents:
        while pending and pending[0].resolved_at <= incident.started_at:
            done = pending.pop(0)
            recommender.learn_one(profiles[done.id], Resolution(done.responder, done.resolution_note, done.resolved_at))
            learned.append(done)
        profile = profiles.get(incident.id)
        if profile is None or not learned or incident.responder is None:
            continue   # none of its events reached triage, or nothing to learn from yet
        suggested = recommender.predict_one(profile)
        ranked = {
            "triage": ([r for r, _ in suggested.responders], [s.incident_id for s in suggested.similar]),
            "baseline": (_most_frequent([t.responder for t in learned]),
                         _recent_on_services(learned, profiles, profile.services)),
        }
        problems = {t.id: t.problem_id for t in learned}
        recurring = incident.problem_id is not None and incident.problem_id in problems.values()
        for name, (responders, similar) in ranked.items():
            s = scores[name]
            s["incidents"] += 1
            s["covered"] += bool(responders or similar)
            s["responder@1"] += incident.responder in responders[:1]
            s["responder@3"] += incident.responder in responders[:3]
            if recurring:
                s["recurring"] += 1
                same = [problems[i] == incident.problem_id for i in similar]
                s["problem@1"] += any(same[:1])
                s["problem@3"] += any(same[:3])
    return [_row(directory.resolve().name, name, s) for name, s in scores.items()]


def _most_frequent(values: list[str | None]) -> list[str]:
    counts = Counter(v for v in values if v)
    return [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _recent_on_services(learned: list[TruthIncident], profiles: dict[str, IncidentProfile],
                        services: tuple[str, ...]) -> list[str]:
    wanted = set(services)
    shared = [t for t in learned if wanted & set(profiles[t.id].services)]
    return [t.id for t in sorted(shared, key=lambda t: (t.resolved_at, t.id), reverse=True)]


def _row(dataset: str, engine: str, s: Counter[str]) -> dict[str, Any]:
    def share(key: str, of: str) -> float | None:
        return s[key] / s[of] if s[of] else None   # nothing to score: no figure, not a zero
    return {"dataset": dataset, "engine": engine, "incidents": s["incidents"],
            "coverage": share("covered", "incidents"),
            "responder_at_1": share("responder@1", "incidents"), "responder_at_3": share("responder@3", "incidents"),
            "recurring": s["recurring"],
            "same_problem_at_1": share("problem@1", "recurring"), "same_problem_at_3": share("problem@3", "recurring")}


SUGGEST_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("dataset", "dataset", "s"),
    ("engine", "engine", "s"),
    ("incidents", "incidents", "d"),
    ("coverage", "coverage", ".3f"),
    ("responder_at_1", "responder@1", ".3f"),
    ("responder_at_3", "responder@3", ".3f"),
    ("recurring", "recurring", "d"),
    ("same_problem_at_1", "same problem@1", ".3f"),
    ("same_problem_at_3", "same problem@3", ".3f"),
)


def format_suggestions_table(rows: list[dict[str, Any]]) -> str:
    return format_table(rows, SUGGEST_COLUMNS)


__all__ = ["evaluate_suggestions", "format_suggestions_table", "load_truth_incidents"]
