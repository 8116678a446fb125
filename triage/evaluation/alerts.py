"""Scoring event grouping on labeled alert streams (the ``alerts`` data sets under shared/data).

``triage eval alerts DIR`` runs triage's correlator and two reference baselines over one
data set and reports, per engine and scope, how many groups each opened (compression),
how well those groups agree with the ground truth (pairwise and B-cubed P/R/F1, adjusted
Rand), and what the person with the pager gets from them: pages, pages per real
incident, incidents paged exactly once, missed incidents, time to page, noise pages.

Every grouping engine is a plain function ``list[Event] -> list[str]`` returning one
group id per event, in the order it was given, so that adding an engine needs nothing
but a function; its pages are its groups that hold a firing alert. triage's row comes
from ``triage_replay``, which also sends the pages the service would send. Engines
never see the truth: the loader drops it through ``event_from_dict`` and keeps the
labels in a separate list.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from triage.correlation.identity import dedup_key
from triage.evaluation.metrics import (
    Page,
    adjusted_rand_index,
    bcubed_scores,
    format_table,
    page_scores,
    pairwise_scores,
)
from triage.ingest.decode import event_from_dict
from triage.domain.errors import InvalidEvent
from triage.domain.event import Event, EventKind, Status
from triage.models.embedder import Embedder
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph
from triage.services.offline_replay import Replay, SentPage

Engine = Callable[[list[Event]], list[str]]

EVENT_FILES = ("events.jsonl.gz", "events.jsonl")
INCIDENTS_FILE = "incidents.jsonl"
TRUTH_FIELD = "truth_incident"
ENGINE_NAMES = ("triage", "fingerprint", "alertmanager")
SCOPES = ("all", "alerts")


# -- loading -------------------------------------------------------------------------


def events_path(directory: Path) -> Path:
    for name in EVENT_FILES:
        path = directory / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"{directory}: none of {', '.join(EVENT_FILES)} found")


def open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _time_key(event: Event) -> tuple[datetime, str]:
    # The same key the correlator sorts by, so every engine sees one and the same order.
    return (event.occurred_at, event.id)


def load_labeled_events(dir: Path) -> tuple[list[Event], list[str]]:
    """Events of DIR/events.jsonl[.gz] in (occurred_at, id) order, and their truth labels.

    The labels come back in a parallel list; the events themselves are validated with
    ``event_from_dict``, which strips the truth fields, so no engine can peek at them.
    """
    path = events_path(Path(dir))
    pairs: list[tuple[Event, str]] = []
    with open_text(path) as lines:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                data: Any = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON: {exc}") from None
            truth = data.get(TRUTH_FIELD) if isinstance(data, dict) else None
            if not isinstance(truth, str) or not truth:
                # An unlabeled event cannot be scored; a silent default would bias every metric.
                raise ValueError(f"{where}: missing {TRUTH_FIELD!r}")
            try:
                event = event_from_dict(data)
            except InvalidEvent as exc:
                raise ValueError(f"{where}: invalid event: {exc}") from None
            pairs.append((event, truth))
    pairs.sort(key=lambda pair: _time_key(pair[0]))
    return [event for event, _ in pairs], [truth for _, truth in pairs]


# -- engines ---------------------------------------------------------------------------


def time_order(events: list[Event]) -> list[int]:
    """Indices of ``events`` in event-time order.

    Engines are stateful streams and must see events in time order, but they answer in
    the caller's order; sorting indices (stably) lets them do both.
    """
    return sorted(range(len(events)), key=lambda i: _time_key(events[i]))


@dataclass(frozen=True)
class Grouping:
    """An engine's answer: one group id per event (in the caller's order), and its pages."""

    groups: list[str]
    pages: list[SentPage]


def triage_replay(parameters: CorrelationParameters | None = None, *, embedder: Embedder,
                  topology: Path | None = None) -> Callable[[list[Event]], Grouping]:
    """triage as the service runs it: the group is the incident each event's Decision
    names; the pages are the triggers the service would send for them
    (``triage.services.offline_replay.Replay``: group_wait, auto_pause's ticker, resolves
    after their trigger, a PagerDuty-like target).

    ``topology``: a declared service graph (``TRIAGE_TOPOLOGY_FILE``'s formats), as a
    deployment that declares its dependencies runs; without it the graph is learned from
    the stream alone (its spans, the services its records name, placements).
    """

    def run(events: list[Event]) -> Grouping:
        # A fresh correlator (and graph) per call: state left over from another run would
        # merge groups.
        graph = ServiceGraph.from_topology(topology) if topology is not None else None
        replay = Replay(parameters, embedder=embedder, topology=graph)
        order = time_order(events)
        groups = [""] * len(events)
        decisions = replay.feed([events[i] for i in order])
        for index, decision in zip(order, decisions, strict=True):
            groups[index] = decision.incident_id
        replay.finish()
        return Grouping(groups, replay.pages)

    return run


def triage_engine(parameters: CorrelationParameters | None = None, *, embedder: Embedder,
                  topology: Path | None = None) -> Engine:
    """triage's groups alone (``triage_replay``'s), as a plain grouping engine."""
    replay = triage_replay(parameters, embedder=embedder, topology=topology)
    return lambda events: replay(events).groups


def _fingerprint_key(event: Event) -> str | None:
    if event.kind is not EventKind.alert or not event.fingerprint:
        return None
    # Fingerprints are only unique within the tool that computed them.
    return f"{event.source}:{event.fingerprint}"


def fingerprint_engine(events: list[Event]) -> list[str]:
    """Exact-fingerprint dedup and nothing else.

    One group per fingerprint per firing episode: a resolved event belongs to (and ends)
    its episode, the next firing opens a new group. A resolve that arrives when no episode
    is open (a re-sent resolve) stays with the fingerprint's last episode rather than
    counting as a new problem. Logs and spans have no fingerprint: each is its own group.
    """
    groups = [""] * len(events)
    episodes: dict[str, int] = {}   # fingerprint -> number of episodes opened so far
    firing: set[str] = set()        # fingerprints whose current episode is still open
    for index in time_order(events):
        event = events[index]
        key = _fingerprint_key(event)
        if key is None:
            groups[index] = f"single:{index}"
            continue
        if key not in firing and (event.status is Status.firing or key not in episodes):
            episodes[key] = episodes.get(key, 0) + 1
            if event.status is Status.firing:
                firing.add(key)
        elif event.status is Status.resolved:
            firing.discard(key)
        groups[index] = f"fp:{key}#{episodes[key]}"
    return groups


def _alertname(event: Event) -> str:
    name = event.labels.get("alertname")
    # Logs and spans carry no alertname; Alertmanager would put them all in one
    # "<no value>" group, the kind at least keeps logs and spans apart.
    return str(name) if name not in (None, "") else event.kind.value


@dataclass
class _AggregationGroup:
    id: str
    last_event_at: datetime
    firing: set[str] = field(default_factory=set)


def alertmanager_engine(
    group_wait: float = 30.0, group_interval: float = 300.0, repeat_interval: float = 14400.0
) -> Engine:
    """Alertmanager with ``group_by: [alertname, service]`` (service falling back to host).

    An aggregation group lives while any of its alerts is firing or it saw an event within
    ``group_interval``; the next event of that key after it died opens a new group, i.e. a
    new page, so the baseline's page count is its group count. ``group_wait`` and
    ``repeat_interval`` only time notifications *within* a group (the first flush and the
    re-sends of an unchanged group); they are accepted and validated so the baseline is
    configured with Alertmanager's full set of timers, but they never change membership.
    """
    for name, value in (("group_wait", group_wait), ("group_interval", group_interval),
                        ("repeat_interval", repeat_interval)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def run(events: list[Event]) -> list[str]:
        groups = [""] * len(events)
        live: dict[tuple[str, str | None], _AggregationGroup] = {}
        for index in time_order(events):
            event = events[index]
            now = event.occurred_at
            key = (_alertname(event), event.service or event.host)
            group = live.get(key)
            if group is None or not (
                group.firing or (now - group.last_event_at).total_seconds() <= group_interval
            ):
                group = _AggregationGroup(id=f"am:{index}", last_event_at=now)
                live[key] = group
            group.last_event_at = max(group.last_event_at, now)
            if event.kind is EventKind.alert:
                signal = dedup_key(event)
                if event.status is Status.firing:
                    group.firing.add(signal)
                else:
                    group.firing.discard(signal)
            groups[index] = group.id
        return groups

    return run


# -- evaluation --------------------------------------------------------------------------


def group_pages(events: list[Event], groups: list[str]) -> list[SentPage]:
    """A plain grouping engine's pages: one per group holding at least one firing alert,
    sent at its first firing alert.

    One rule for every such engine, so the column compares pages and not each engine's
    own notion of one: a group of logs and spans alone is recorded and pages nobody
    (the Alertmanager baseline's per-kind groups, which no receiver routes), and a group
    of resolves alone has nothing left to page about. No timer delays them (the
    Alertmanager baseline's group_wait would add 30 s).
    """
    first: dict[str, datetime] = {}
    for event, group in zip(events, groups, strict=True):
        if event.kind is EventKind.alert and event.status is Status.firing:
            if group not in first or event.occurred_at < first[group]:
                first[group] = event.occurred_at
    return [SentPage(group, at) for group, at in first.items()]


def count_pages(events: list[Event], groups: list[str]) -> int:
    """Groups that would page someone: those holding at least one firing alert (``group_pages``)."""
    return len(group_pages(events, groups))


def _grouping(engine: Engine) -> Callable[[list[Event]], Grouping]:
    def run(events: list[Event]) -> Grouping:
        groups = engine(events)
        if len(groups) != len(events):
            raise RuntimeError(f"engine returned {len(groups)} groups for {len(events)} events")
        return Grouping(groups, group_pages(events, groups))
    return run


def _engines(parameters: CorrelationParameters | None, catalog: Path | None,
             embedder: Embedder) -> Iterator[tuple[str, Callable[[list[Event]], Grouping]]]:
    yield "triage", triage_replay(parameters, embedder=embedder)
    if catalog is not None:
        yield "triage+catalog", triage_replay(parameters, embedder=embedder, topology=catalog)
    yield "fingerprint", _grouping(fingerprint_engine)
    yield "alertmanager", _grouping(alertmanager_engine())


def read_incident_ids(dir: Path) -> set[str] | None:
    """The ids of the real incidents (DIR/incidents.jsonl); None when the file is absent."""
    path = Path(dir) / INCIDENTS_FILE
    if not path.is_file():
        return None
    ids: set[str] = set()
    with path.open("r", encoding="utf-8") as lines:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data: Any = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON: {exc}") from None
            if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                raise ValueError(f"{path}:{lineno}: an incident needs a string 'id'")
            ids.add(data["id"])
    return ids


PAGE_KEYS = ("exact", "pages_per_incident", "missed", "time_to_page_p50_s", "time_to_page_p95_s",
             "noise_pages")


def _paging(events: list[Event], truth: list[str], groups: list[str], pages: list[SentPage],
            real: set[str] | None) -> dict[str, Any]:
    """The paging figures of one row: each page with the truth labels of the firing alerts
    its group holds at the end of the run, scored by ``metrics.page_scores``; all None
    but ``incidents`` when the data set names no real incidents."""
    if real is None:
        return {"incidents": None, **{key: None for key in PAGE_KEYS}}
    holds: dict[str, set[Hashable]] = {}
    started: dict[Hashable, float] = {}
    for event, label, group in zip(events, truth, groups, strict=True):
        if event.kind is EventKind.alert and event.status is Status.firing:
            holds.setdefault(group, set()).add(label)
            if label in real:
                at = event.occurred_at.timestamp()
                started[label] = min(at, started.get(label, at))
    scores = page_scores([Page(p.at.timestamp(), frozenset(holds.get(p.group, ()))) for p in pages], started)
    return {"incidents": scores.incidents, **{key: getattr(scores, key) for key in PAGE_KEYS}}


def _score(dataset: str, scope: str, name: str, engine: Callable[[list[Event]], Grouping],
           events: list[Event], truth: list[str], real: set[str] | None) -> dict[str, Any]:
    started = time.perf_counter()
    result = engine(events)
    elapsed = time.perf_counter() - started
    pred = result.groups
    if len(pred) != len(events):
        raise RuntimeError(f"engine {name} returned {len(pred)} groups for {len(events)} events")
    n = len(events)
    groups = len(set(pred))
    precision, recall, f1 = pairwise_scores(truth, pred)
    b3_precision, b3_recall, b3_f1 = bcubed_scores(truth, pred)
    return {
        "dataset": dataset,
        "scope": scope,
        "engine": name,
        "events": n,
        "groups": groups,
        "pages": len(result.pages),
        "compression": 1.0 - groups / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ari": adjusted_rand_index(truth, pred),
        "b3_precision": b3_precision,
        "b3_recall": b3_recall,
        "b3_f1": b3_f1,
        **_paging(events, truth, pred, result.pages, real),
        "events_per_s": n / elapsed if elapsed > 0 else math.inf,
    }


CATALOG_FILE = "services.yaml"


def evaluate_alerts(dir: Path, parameters: CorrelationParameters | None = None, *, embedder: Embedder,
                    catalog: bool = False) -> list[dict[str, Any]]:
    """One row per scope (all events, alerts only) and engine (triage, fingerprint, alertmanager),
    and per scope a last row for the ground truth itself. triage embeds with ``embedder``,
    which its figures depend on.

    Alerts-only runs each engine on the alerts alone, not on all events with the
    others filtered out afterwards: that is what a deployment fed only alerts would do.
    With ``catalog``, a "triage+catalog" row runs triage with DIR/services.yaml declared
    (its ``depends_on``), as a deployment that declares its service catalog would.
    The paging figures need DIR/incidents.jsonl (which truth ids are real incidents);
    without it they are None.
    """
    directory = Path(dir)
    dataset = directory.resolve().name
    catalog_file = directory / CATALOG_FILE if catalog else None
    if catalog_file is not None and not catalog_file.is_file():
        raise FileNotFoundError(f"{catalog_file}: not found (the catalog run declares each data set's {CATALOG_FILE})")
    events, truth = load_labeled_events(directory)
    real = read_incident_ids(directory)
    alert_idx = [i for i, e in enumerate(events) if e.kind is EventKind.alert]
    subsets = {
        "all": (events, truth),
        "alerts": ([events[i] for i in alert_idx], [truth[i] for i in alert_idx]),
    }
    rows: list[dict[str, Any]] = []
    for scope in SCOPES:
        scope_events, scope_truth = subsets[scope]
        for name, engine in _engines(parameters, catalog_file, embedder):
            rows.append(_score(dataset, scope, name, engine, scope_events, scope_truth, real))
        rows.append(_truth_row(dataset, scope, scope_events, scope_truth, real))
    return rows


def _truth_row(dataset: str, scope: str, events: list[Event], truth: list[str],
               real: set[str] | None) -> dict[str, Any]:
    """The ground truth as if it were an engine: the groups and pages a perfect one would open.

    It puts the others' counts in proportion (fewer pages than the truth means incidents
    were merged; its noise pages are the truth's noise groups holding a firing alert);
    its scores are 1 by definition and it has no speed.
    """
    row = _score(dataset, scope, "truth", _grouping(lambda _: list(truth)), events, truth, real)
    row["events_per_s"] = None
    return row


_KEY = (("dataset", "dataset", "s"), ("scope", "scope", "s"), ("engine", "engine", "s"))
# (row key, header, format); text columns left-aligned, numbers right-aligned
_GROUPING_COLUMNS: tuple[tuple[str, str, str], ...] = (
    *_KEY,
    ("events", "events", "d"),
    ("groups", "groups", "d"),
    ("compression", "compression", ".3f"),
    ("precision", "P", ".3f"),
    ("recall", "R", ".3f"),
    ("f1", "F1", ".3f"),
    ("ari", "ARI", ".3f"),
    ("b3_precision", "B3 P", ".3f"),
    ("b3_recall", "B3 R", ".3f"),
    ("b3_f1", "B3 F1", ".3f"),
    ("events_per_s", "events/s", ",.0f"),
)
_PAGING_COLUMNS: tuple[tuple[str, str, str], ...] = (
    *_KEY,
    ("incidents", "incidents", "d"),
    ("pages", "pages", "d"),
    ("exact", "exact", ".2f"),
    ("pages_per_incident", "pages/incident", ".2f"),
    ("missed", "missed", "d"),
    ("time_to_page_p50_s", "to page p50 s", ".0f"),
    ("time_to_page_p95_s", "to page p95 s", ".0f"),
    ("noise_pages", "noise pages", "d"),
)


def format_alerts_table(rows: list[dict[str, Any]]) -> str:
    """Two aligned plain-text tables of ``evaluate_alerts`` rows: grouping, then paging."""
    return format_table(rows, _GROUPING_COLUMNS) + "\n\n" + format_table(rows, _PAGING_COLUMNS)
