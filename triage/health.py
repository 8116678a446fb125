"""What each long-running part of a process says about itself, for ``/readyz`` and ``/metrics``.

Every background loop (the consumer, the outbox sender, the auto-pause ticker, the
families job) reports to one ``Health`` object: ``ok(name)`` after a turn that worked,
``failing(name, reason)`` after one that did not. A failing dependency is a state to show,
never a reason to exit: the loop backs off and tries again, ``/readyz`` answers 503 naming
the component and its reason, and ``triage_component_up{component=...}`` is 0.

Logging follows state *changes*: the first failure is a warning with its reason, repeats
of the same failure are silent (counted in ``triage_component_failures_total``), and the
recovery is one info line. A database that is down for an hour costs two log lines, not
3,600 tracebacks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComponentState:
    name: str
    ok: bool
    reason: str          # why it is failing; "" when ok
    since: float         # monotonic time of the last state change
    failures: int        # failed turns in a row


class Health:
    def __init__(self, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, ComponentState] = {}
        self._up: Gauge | None = None
        self._failures: Counter | None = None
        if registry is not None:
            self._up = Gauge("triage_component_up",
                             "1 while the component's last turn worked, 0 while it is failing and retrying",
                             ["component"], registry=registry)
            self._failures = Counter("triage_component_failures_total",
                                     "Failed turns of a background component (each retried with backoff)",
                                     ["component"], registry=registry)

    def register(self, name: str) -> None:
        """Name a component before its first turn, so ``/readyz`` lists it from the start."""
        with self._lock:
            if name not in self._states:
                self._states[name] = ComponentState(name, True, "", self._clock(), 0)
        if self._up is not None:
            self._up.labels(name).set(1)

    def ok(self, name: str) -> None:
        with self._lock:
            before = self._states.get(name)
            if before is not None and before.ok:
                return
            self._states[name] = ComponentState(name, True, "", self._clock(), 0)
        if before is not None:
            log.info("%s recovered after %d failed turns", name, before.failures)
        if self._up is not None:
            self._up.labels(name).set(1)

    def failing(self, name: str, reason: str) -> None:
        reason = " ".join(reason.split())[:300]
        with self._lock:
            before = self._states.get(name)
            changed = before is None or before.ok or before.reason != reason
            since = self._clock() if before is None or before.ok else before.since
            failures = 1 if before is None or before.ok else before.failures + 1
            self._states[name] = ComponentState(name, False, reason, since, failures)
        if changed:
            log.warning("%s is failing, retrying with backoff: %s", name, reason)
        if self._up is not None:
            self._up.labels(name).set(0)
        if self._failures is not None:
            self._failures.labels(name).inc()

    def states(self) -> list[ComponentState]:
        with self._lock:
            return sorted(self._states.values(), key=lambda s: s.name)


class Backoff:
    """Exponential backoff with a cap: ``next()`` is the pause before the next try,
    ``reset()`` after a success."""

    def __init__(self, first_s: float = 0.5, max_s: float = 30.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._next = first_s

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next = self.first_s
