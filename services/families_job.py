"""Alert families, fitted periodically: the same problem worded many ways, found by HDBSCAN.

``fit_and_store`` is one fit: it reads how every alert template has been used (one
aggregate over ``memberships.template_id``), takes the texts and their stored MiniLM
embeddings, clusters them (``models.families.fit_families``), keeps the ids of the
families the previous fit found (``TemplateFamilies.aligned``), counts per family the
events, incidents, pages and last decision, and writes all of it as a new version
(``triage.store.family_fits``). ``triage serve`` / ``triage consume`` run it every
``TRIAGE_FAMILIES_INTERVAL_S`` (``FamiliesJob``: a thread that waits, and each fit in a
process of its own); ``triage families fit`` runs it once. Of several replicas one fits
at a time (a lease row), and a replica whose neighbour fitted recently skips its turn.

``FamiliesCache`` hands the newest fitted families to the correlator: the consumer asks
the store for the newest version at most every few seconds, never per event, and loads
a document only when the version changed.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import sqlalchemy as sa

from triage.domain.health import Backoff, DependencyFailure, Health, is_dependency_failure, run_loop
from triage.models.embedder import Embedder, EmbedderKind, make_embedder
from triage.models.alert_families import TemplateFamilies, fit_families
from triage.store.embeddings import stored_vectors
from triage.store.family_fits import FamilyStats, FamilyStore, TemplateUse, alert_template_texts, template_usage
from triage.store.leases import claim, release

log = logging.getLogger(__name__)

FIT_LEASE = "families.fit"
LEASE_TTL = timedelta(minutes=10)
MAX_TEMPLATES = 5000      # the most used alert templates, when a deployment has more


@dataclass(frozen=True)
class FitResult:
    version: int
    fitted_at: datetime
    templates: int        # alert templates clustered
    outliers: int         # of which in no family
    seconds: float
    stats: list[FamilyStats]

    @property
    def families(self) -> int:
        return len(self.stats)


def family_stats(families: TemplateFamilies, usage: Iterable[TemplateUse],
                 texts: dict[str, str]) -> list[FamilyStats]:
    """Per family: its templates, the events decided on them, the incidents those joined,
    the pages they caused, the last decision's time. Most events first, then by id."""
    events: Counter[int] = Counter()
    pages: Counter[int] = Counter()
    incidents: dict[int, set[str]] = {}
    last_seen: dict[int, datetime] = {}
    by_text: Counter[str] = Counter()
    for use in usage:
        text = texts.get(use.template_id)
        family = families.members.get(text) if text is not None else None
        if text is None or family is None:
            continue
        events[family] += use.events
        pages[family] += use.pages
        incidents.setdefault(family, set()).update(use.incidents)
        by_text[text] += use.events
        if use.last_seen is not None and (family not in last_seen or use.last_seen > last_seen[family]):
            last_seen[family] = use.last_seen
    out = []
    for family in families.family_ids:
        members = families.texts(family)
        out.append(FamilyStats(
            family=family, size=len(members), events=events[family], incidents=len(incidents.get(family, ())),
            pages=pages[family], last_seen=last_seen.get(family),
            templates=sorted(((text, by_text[text]) for text in members), key=lambda p: (-p[1], p[0]))))
    return sorted(out, key=lambda s: (-s.events, s.family))


def fit_and_store(engine: sa.Engine, *, embedder: Embedder, now: datetime | None = None, holder: str = "triage",
                  interval_s: float = 0.0, force: bool = False, min_cluster_size: int = 2, max_templates: int = MAX_TEMPLATES) -> FitResult | None:
    """Fit the alert families and store them as a new version, with ``embedder``'s vectors
    of the templates (the store's, else the model's). Returns ``None`` when it did not fit: another process holds the lease, a fit younger than ``0.9 * interval_s``
    exists (unless ``force``), or no alert template has been decided yet."""
    started = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    store = FamilyStore(engine)
    if not force:
        if not claim(engine, FIT_LEASE, holder, now, LEASE_TTL):
            return None
    try:
        latest = store.latest()
        if not force and latest is not None and interval_s > 0 and \
                (now - latest.fitted_at).total_seconds() < 0.9 * interval_s:
            return None
        with engine.connect() as conn:
            usage = template_usage(conn, "A")
            texts = alert_template_texts(conn, usage, embedder.name)
            weight: Counter[str] = Counter()
            for use in usage.values():
                if use.template_id in texts:
                    weight[texts[use.template_id]] += use.events
            chosen = sorted(weight, key=lambda text: (-weight[text], text))[:max_templates]
            vectors = _vectors(conn, chosen, embedder)
        if not chosen:
            return None
        previous = store.document(latest.version) if latest is not None else None
        next_id = latest.next_id if latest is not None else 0
        families = fit_families(chosen, vectors, min_cluster_size=min_cluster_size).aligned(previous, next_id)
        stats = family_stats(families, usage.values(), texts)
        next_id = max([next_id, *(f + 1 for f in families.family_ids)])
        version = store.save(families, stats, fitted_at=now, fitted_by=holder, templates=len(chosen),
                             next_id=next_id)
    finally:
        if not force:
            release(engine, FIT_LEASE, holder, datetime.now(timezone.utc))
    result = FitResult(version=version, fitted_at=now, templates=len(chosen),
                       outliers=len(chosen) - len(families.members), seconds=time.perf_counter() - started,
                       stats=stats)
    log.info("alert families v%d: %d templates, %d families, %d outliers, %.1f s", version, result.templates,
             result.families, result.outliers, result.seconds)
    return result


def _vectors(conn: sa.Connection, texts: list[str], embedder: Embedder) -> np.ndarray:
    """Embeddings of ``texts``: the process's cache, else the store, else the model."""
    if not texts:
        return np.zeros((0, max(embedder.dim, 1)), dtype=np.float32)
    found: dict[str, np.ndarray] = {}
    for text in texts:
        vector = embedder.cached(text)
        if vector is not None:
            found[text] = vector
    missing = [text for text in texts if text not in found]
    for text, values in stored_vectors(conn, missing, embedder.name).items():
        if len(values) == embedder.dim:
            found[text] = np.asarray(values, dtype=np.float32)
    missing = [text for text in texts if text not in found]
    if missing:
        found.update(zip(missing, embedder.embed(missing)))
    return np.stack([found[text] for text in texts])


class FamiliesJob:
    """``fit_and_store`` every ``interval_s`` until ``stop``, the first time after
    ``first_delay_s`` (not while the process is still starting).

    Each fit runs in a child process: beside the consumer's thread, its seconds of Python
    and HDBSCAN would hold the interpreter lock, and the store's ``executemany``, which
    gives the lock up around every row and must wait to take it back, ran many times
    slower for the whole fit (``python tools/gil_convoy.py`` shows the effect). The child
    connects to ``database_url`` itself and builds its own embedder of ``embedder``'s kind
    (``Settings.embedder``: a model cannot be handed to another process); a stop ends it."""

    def __init__(self, database_url: str, interval_s: float, *, holder: str, embedder: EmbedderKind,
                 first_delay_s: float = 60.0) -> None:
        self.database_url = database_url
        self.embedder = embedder
        self.interval_s = interval_s
        self.holder = holder
        self.first_delay_s = min(first_delay_s, interval_s)

    def run_once(self, stop: threading.Event | None = None) -> FitResult | None:
        """One fit in a child process; ``None`` if it did not fit or ``stop`` was set
        first. Raises ``RuntimeError`` with the child's error if the fit failed
        (``DependencyFailure`` when the child could not reach the database)."""
        context = multiprocessing.get_context("spawn")   # no copy of the consumer's threads and sockets
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_fit_in_child, name="triage-families-fit", daemon=True,
                                args=(self.database_url, self.holder, self.interval_s, self.embedder, send))
        child.start()
        send.close()
        try:
            while not receive.poll(0.2):   # readable on an answer, or at EOF when the child is gone
                if stop is not None and stop.is_set():
                    return None
            try:
                failed, dependency, outcome = receive.recv()
            except EOFError:   # it died before answering
                child.join()
                raise RuntimeError(f"the fitting process exited with code {child.exitcode}") from None
        finally:
            if child.is_alive() and stop is not None and stop.is_set():
                child.terminate()   # its lease expires after LEASE_TTL; nothing half-written commits
            child.join()
            receive.close()
        if failed:
            raise DependencyFailure(outcome) if dependency else RuntimeError(outcome)
        return outcome

    def run(self, stop: threading.Event, health: Health | None = None) -> None:
        """Fit every ``interval_s`` until ``stop``. A fit that fails (the database is down,
        the child died) is reported as the ``families`` component failing and tried again
        after a backoff from a minute up to ``interval_s``: the families a fit would
        refresh are still served from the last version meanwhile."""
        def turn() -> float:
            self.run_once(stop)
            return self.interval_s

        run_loop("families", health or Health(), stop, turn, first_delay_s=self.first_delay_s,
                 backoff=Backoff(first_s=min(60.0, self.interval_s), max_s=self.interval_s))


def _fit_in_child(database_url: str, holder: str, interval_s: float, embedder: EmbedderKind, send: Any) -> None:
    from triage.store.engine import create_engine

    engine = create_engine(database_url)
    try:
        send.send((False, False, fit_and_store(engine, holder=holder, interval_s=interval_s,
                                               embedder=make_embedder(embedder))))
    except Exception as exc:   # noqa: BLE001 - reported to the parent, which logs it and tries again later
        send.send((True, is_dependency_failure(exc), f"{type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()
        send.close()


class FamiliesCache:
    """The newest fitted families, as the correlator takes them: ``cache()`` asks the store
    for the newest version at most every ``ttl_s`` seconds and loads its document only
    when it changed; ``None`` before the first fit."""

    def __init__(self, engine: sa.Engine, ttl_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = FamilyStore(engine)
        self.ttl_s = ttl_s
        self.clock = clock
        self._checked: float | None = None
        self._version: int | None = None
        self._families: TemplateFamilies | None = None
        self._lock = threading.Lock()

    def __call__(self) -> TemplateFamilies | None:
        now = self.clock()
        with self._lock:
            if self._checked is not None and now - self._checked < self.ttl_s:
                return self._families
            self._checked = now
            version = self.store.latest_version()
            if version != self._version:
                families = self.store.document(version) if version is not None else None
                self._version, self._families = version, families
            return self._families
