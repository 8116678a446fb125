"""Similar past incidents and remediations, from what triage knew when each incident
first paged.

An incident is described by a ``TriageProfile``: its probable causes (best first), the
alert names and services it showed, and the centroid of its templates' embeddings (unit
length, or None). Two profiles are compared on

* the probable cause: the same first cause weighs most, a shared cause among the top
  three less (the same component failing again);
* the templates' centroids (cosine): the same kind of failure reads alike (an OOM kill
  and a latency regression do not);
* how the first cause failed: the words of its own alerts and error messages (Jaccard),
  which tell an OOM kill from a latency regression on the same service;
* the alert names (Jaccard) and services (Jaccard).

``SimilarIndex.search`` returns only incidents that started before the one asked about,
best first. ``rank_remediations`` turns similar incidents' resolution notes, the
runbooks of the cause and its neighbours (matched on alert kind and tags) and the
``runbook_url`` annotations of the incident's alerts into suggestions, each with its
evidence; notes of incidents with the same first cause come first, since they say what
fixed this last time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import numpy as np

from triage.models.catalog import Catalog, Runbook

__all__ = ["PastIncident", "Remediation", "RemediationSource", "SimilarIndex", "SimilarMatch", "SimilarParameters",
           "TriageProfile", "rank_remediations"]


@dataclass(frozen=True)
class TriageProfile:
    incident_id: str
    started_at: datetime
    causes: tuple[str, ...] = ()          # probable-cause components, best first
    alert_names: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    vector: np.ndarray | None = None      # template centroid, unit length
    title: str = ""
    owner: str | None = None              # the catalog entry answering for the first cause
    cause_words: frozenset[str] = frozenset()   # words of the first cause's own alerts and errors


@dataclass(frozen=True)
class PastIncident:
    profile: TriageProfile
    responder: str | None = None
    note: str | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class SimilarParameters:
    w_same_cause: float = 1.0
    w_shared_cause: float = 0.3
    w_text: float = 1.0
    w_alerts: float = 0.4
    w_cause_words: float = 1.0      # how the first cause failed: its own alerts' and errors' words
    w_services: float = 0.2
    min_score: float = 0.5
    top: int = 5


@dataclass(frozen=True)
class SimilarMatch:
    incident: PastIncident
    score: float
    evidence: tuple[str, ...]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


class SimilarIndex:
    def __init__(self, parameters: SimilarParameters | None = None) -> None:
        self.parameters = parameters or SimilarParameters()
        self._past: dict[str, PastIncident] = {}

    def __len__(self) -> int:
        return len(self._past)

    def learn_one(self, incident: PastIncident) -> None:
        self._past[incident.profile.incident_id] = incident

    def search(self, query: TriageProfile, top: int | None = None) -> list[SimilarMatch]:
        p = self.parameters
        out: list[SimilarMatch] = []
        for past in self._past.values():
            other = past.profile
            if other.incident_id == query.incident_id or other.started_at >= query.started_at:
                continue
            score, evidence = 0.0, []
            if query.causes and other.causes and query.causes[0] == other.causes[0]:
                score += p.w_same_cause
                evidence.append(f"same probable cause: {query.causes[0]}")
            elif set(query.causes) & set(other.causes):
                shared = sorted(set(query.causes) & set(other.causes))
                score += p.w_shared_cause
                evidence.append(f"shares a probable cause: {shared[0]}")
            if query.vector is not None and other.vector is not None and len(query.vector) == len(other.vector):
                cos = float(np.dot(query.vector, other.vector))
                score += p.w_text * cos
                evidence.append(f"its alerts and logs read alike (cosine {cos:.2f})")
            words = _jaccard(query.cause_words, other.cause_words)
            if words and query.causes[:1] == other.causes[:1]:
                score += p.w_cause_words * words
                evidence.append(f"{query.causes[0]} failed the same way ({words:.0%} of the words of its alerts and errors alike)")
            alerts = _jaccard(query.alert_names, other.alert_names)
            if alerts:
                score += p.w_alerts * alerts
                evidence.append(f"{len(query.alert_names & other.alert_names)} alert names in common")
            score += p.w_services * _jaccard(query.services, other.services)
            if score >= p.min_score:
                out.append(SimilarMatch(past, round(score, 4), tuple(evidence)))
        out.sort(key=lambda m: (-m.score, -m.incident.profile.started_at.timestamp(), m.incident.profile.incident_id))
        return out[:top or p.top]


class RemediationSource(str, Enum):
    past_resolution = "past_resolution"   # the resolution note of a similar past incident
    runbook = "runbook"                   # a runbook of the catalog
    annotation = "annotation"             # a runbook_url an alert carried


@dataclass(frozen=True)
class Remediation:
    text: str
    source: RemediationSource
    url: str | None
    evidence: str
    from_incident: str | None = None


_WORD = re.compile(r"[a-z0-9]+")
# Words of alert names and templates -> runbook tags they speak to.
_TAG_WORDS: dict[str, tuple[str, ...]] = {
    "memory": ("memory", "oom", "oomkiller", "heap", "maxmemory", "evict", "evictions"),
    "restarts": ("crash", "crashlooping", "restart", "restarts", "killed", "oom", "oomkiller"),
    "kubernetes": ("pod", "kubernetes", "container", "deployment", "replicas", "crashlooping", "node"),
    "latency": ("latency", "slow", "deadline", "percentile", "timeout"),
    "errors": ("5xx", "error", "errors", "failed", "unavailable"),
    "deploy": ("deploy", "deployment", "rollout", "version", "generation"),
    "availability": ("down", "unavailable", "probe"),
    "connections": ("connections", "connection", "maxclients", "rejected"),
    "node": ("node", "notready", "host", "pressure", "iowait", "kubelet"),
    "disk": ("disk", "space", "filesystem", "inodes"),
    "dns": ("dns", "coredns", "resolver", "lookup"),
    "network": ("network", "packet", "receive", "transmit"),
    "tls": ("certificate", "tls", "x509", "cert"),
}


def _words(texts: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for text in texts:
        spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
        out.update(_WORD.findall(spaced.lower()))
    return out


def _runbook_fit(runbook: Runbook, words: set[str]) -> tuple[int, list[str]]:
    tags = [t for t in runbook.tags if (set(_TAG_WORDS.get(t, ())) | {t}) & words]
    return len(tags), tags


def rank_remediations(*, similar: Sequence[SimilarMatch], causes: Sequence[str], catalog: Catalog,
                      cause_entry: str | None, neighbours: Sequence[str] = (),
                      texts: Sequence[str] = (), annotations: Sequence[tuple[str, str]] = (),
                      top: int = 5) -> list[Remediation]:
    """Suggestions best first, each with its evidence. ``cause_entry``: the catalog entry
    answering for the first cause; ``neighbours``: its neighbours' entries;
    ``texts``: alert names and templates of the incident; ``annotations``:
    (alert name, runbook_url) pairs its alerts carried."""
    out: list[Remediation] = []
    seen: set[str] = set()
    first = causes[0] if causes else None
    notes = [m for m in similar if m.incident.note]
    notes.sort(key=lambda m: (not (first and m.incident.profile.causes[:1] == (first,)), -m.score))
    for m in notes[:2]:
        note = m.incident.note or ""
        if note in seen:
            continue
        seen.add(note)
        out.append(Remediation(note, RemediationSource.past_resolution, None,
                               f"what resolved {m.incident.profile.incident_id} ({'; '.join(m.evidence[:2])})",
                               m.incident.profile.incident_id))
    for name, url in annotations:
        if url not in seen:
            seen.add(url)
            out.append(Remediation(f"runbook of alert {name}", RemediationSource.annotation, url,
                                   f"the runbook_url annotation of {name}"))
    words = _words(texts)
    books: list[tuple[int, int, Runbook, str, list[str]]] = []
    for distance, name in enumerate([cause_entry, *neighbours] if cause_entry else list(neighbours)):
        entry = catalog.service(name)
        if entry is None:
            continue
        for runbook in entry.runbooks:
            fit, tags = _runbook_fit(runbook, words)
            if fit:
                books.append((min(distance, 1), -fit, runbook, entry.name, tags))
    books.sort(key=lambda b: (b[0], b[1], b[2].title))
    for distance, _, runbook, owner, tags in books:
        if runbook.url in seen:
            continue
        seen.add(runbook.url)
        where = "the probable cause" if distance == 0 else "a neighbour of the probable cause"
        out.append(Remediation(runbook.title, RemediationSource.runbook, runbook.url,
                               f"runbook of {owner} ({where}), tags {', '.join(tags)} match the alerts"))
    for m in notes[2:]:
        note = m.incident.note or ""
        if note not in seen:
            seen.add(note)
            out.append(Remediation(note, RemediationSource.past_resolution, None,
                                   f"what resolved {m.incident.profile.incident_id} ({'; '.join(m.evidence[:2])})",
                                   m.incident.profile.incident_id))
    return out[:top]
