"""Scoring event grouping on labeled alert streams (the ``alerts`` data sets under shared/data).

``triage eval alerts DIR`` runs triage's correlator and two reference baselines over one
data set and reports, per engine and scope, how many groups each opened (compression),
how many of them would page someone, and how well those groups agree with the ground
truth (pairwise P/R/F1, adjusted Rand).

Every engine is a plain function ``list[Event] -> list[str]`` returning one group id per
event, in the order it was given, so that adding an engine needs nothing but a function.
Engines never see the truth: the loader drops it through ``event_from_dict`` and keeps
the labels in a separate list.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from triage.correlation.correlator import Correlator
from triage.correlation.keys import dedup_key
from triage.evaluation.metrics import adjusted_rand_index, format_table, pairwise_scores
from triage.ingest.decode import event_from_dict
from triage.ingest.errors import InvalidEvent
from triage.ingest.event import Event, EventKind, Status
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph

Engine = Callable[[list[Event]], list[str]]

EVENT_FILES = ("events.jsonl.gz", "events.jsonl")
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


def triage_engine(parameters: CorrelationParameters | None = None, *, topology: Path | None = None) -> Engine:
    """triage's correlator: the group is the incident each event's Decision names.

    ``topology``: a declared service graph (``TRIAGE_TOPOLOGY_FILE``'s formats), as a
    deployment that declares its dependencies runs; without it the graph is learned from
    the stream's spans alone.
    """

    def run(events: list[Event]) -> list[str]:
        # A fresh correlator (and graph) per call: state left over from another run would
        # merge groups.
        graph = ServiceGraph.from_topology(topology) if topology is not None else None
        decisions = Correlator(parameters, topology=graph).process_batch(events)
        # process_batch answers in its own (stable) time order; the same stable sort of the
        # indices maps each decision back to its event, even if two events share an id.
        groups = [""] * len(events)
        for index, decision in zip(time_order(events), decisions, strict=True):
            groups[index] = decision.incident_id
        return groups

    return run


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


def _engines(parameters: CorrelationParameters | None, catalog: Path | None) -> Iterator[tuple[str, Engine]]:
    yield "triage", triage_engine(parameters)
    if catalog is not None:
        yield "triage+catalog", triage_engine(parameters, topology=catalog)
    yield "fingerprint", fingerprint_engine
    yield "alertmanager", alertmanager_engine()


def count_pages(events: list[Event], groups: list[str]) -> int:
    """Groups that would page someone: those holding at least one firing alert.

    One rule for every engine, so the column compares pages and not each engine's own
    notion of one: a group of logs and spans alone is recorded and pages nobody (triage's
    noise group; the Alertmanager baseline's per-kind groups, which no receiver routes),
    and a group of resolves alone has nothing left to page about.
    """
    return len({group for event, group in zip(events, groups, strict=True)
                if event.kind is EventKind.alert and event.status is Status.firing})


def _score(dataset: str, scope: str, name: str, engine: Engine,
           events: list[Event], truth: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    pred = engine(events)
    elapsed = time.perf_counter() - started
    if len(pred) != len(events):
        raise RuntimeError(f"engine {name} returned {len(pred)} groups for {len(events)} events")
    n = len(events)
    groups = len(set(pred))
    precision, recall, f1 = pairwise_scores(truth, pred)
    return {
        "dataset": dataset,
        "scope": scope,
        "engine": name,
        "events": n,
        "groups": groups,
        "pages": count_pages(events, pred),
        "compression": 1.0 - groups / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ari": adjusted_rand_index(truth, pred),
        "events_per_s": n / elapsed if elapsed > 0 else math.inf,
    }


CATALOG_FILE = "services.yaml"


def evaluate_alerts(dir: Path, parameters: CorrelationParameters | None = None, *,
                    catalog: bool = False) -> list[dict[str, Any]]:
    """One row per scope (all events, alerts only) and engine (triage, fingerprint, alertmanager),
    and per scope a last row for the ground truth itself.

    Alerts-only runs each engine on the alerts alone, not on all events with the
    others filtered out afterwards: that is what a deployment fed only alerts would do.
    With ``catalog``, a "triage+catalog" row runs triage with DIR/services.yaml declared
    (its ``depends_on``), as a deployment that declares its service catalog would.
    """
    directory = Path(dir)
    dataset = directory.resolve().name
    catalog_file = directory / CATALOG_FILE if catalog else None
    if catalog_file is not None and not catalog_file.is_file():
        raise FileNotFoundError(f"{catalog_file}: not found (the catalog run declares each data set's {CATALOG_FILE})")
    events, truth = load_labeled_events(directory)
    alert_idx = [i for i, e in enumerate(events) if e.kind is EventKind.alert]
    subsets = {
        "all": (events, truth),
        "alerts": ([events[i] for i in alert_idx], [truth[i] for i in alert_idx]),
    }
    rows: list[dict[str, Any]] = []
    for scope in SCOPES:
        scope_events, scope_truth = subsets[scope]
        for name, engine in _engines(parameters, catalog_file):
            rows.append(_score(dataset, scope, name, engine, scope_events, scope_truth))
        rows.append(_truth_row(dataset, scope, scope_events, scope_truth))
    return rows


def _truth_row(dataset: str, scope: str, events: list[Event], truth: list[str]) -> dict[str, Any]:
    """The ground truth as if it were an engine: the groups and pages a perfect one would open.

    It puts the others' counts in proportion (fewer pages than the truth means incidents
    were merged); its scores are 1 by definition and it has no speed.
    """
    row = _score(dataset, scope, "truth", lambda _: list(truth), events, truth)
    row["events_per_s"] = None
    return row


_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (row key, header, format); text columns left-aligned, numbers right-aligned
    ("dataset", "dataset", "s"),
    ("scope", "scope", "s"),
    ("engine", "engine", "s"),
    ("events", "events", "d"),
    ("groups", "groups", "d"),
    ("pages", "pages", "d"),
    ("compression", "compression", ".3f"),
    ("precision", "P", ".3f"),
    ("recall", "R", ".3f"),
    ("f1", "F1", ".3f"),
    ("ari", "ARI", ".3f"),
    ("events_per_s", "events/s", ",.0f"),
)


def format_alerts_table(rows: list[dict[str, Any]]) -> str:
    """An aligned plain-text table of ``evaluate_alerts`` rows."""
    return format_table(rows, _COLUMNS)
