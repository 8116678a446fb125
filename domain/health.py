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

``run_loop`` is the loop every periodic component runs: one turn, ``ok`` or ``failing``,
the next turn after the turn's own pause or, after a failure, after a ``Backoff``. It
retries *every* exception, not only a dependency's (a database, broker or HTTP peer that
is down): a bug that fails each turn is retried too, shown as failing with its reason,
and logged with its traceback once per state change, so the rest of the process (the
consumer beside a failing families job, say) keeps working and the operator sees which
part is broken. A process exits only when it cannot run at all (see ``triage.service``).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)


_USERINFO = re.compile(r"(\b[a-zA-Z][\w+.-]*://)[^/\s@]*@")
_PASSWORD = re.compile(r"(password\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)", re.IGNORECASE)
# What SQLAlchemy appends to a driver's message: the statement, its parameters (data), a link.
_DRIVER_DETAIL = re.compile(r"\s*(\[SQL: |\[parameters: |\(Background on this error at)")


def redact(reason: str) -> str:
    """A failure's reason as a reader may see it: its first line without the SQL and its
    parameters, credentials masked, 300 characters."""
    first = reason.strip().splitlines()[0] if reason.strip() else ""
    first = _DRIVER_DETAIL.split(first, maxsplit=1)[0]
    first = _USERINFO.sub(r"\1***@", first)
    return _PASSWORD.sub(r"\1***", first)[:300]



@dataclass(frozen=True)
class ComponentState:
    name: str
    ok: bool
    reason: str          # why it is failing; "" when ok
    since: float         # monotonic time of the last state change
    failures: int        # failed turns in a row


class Health:
    """``metric`` and ``label`` name the two metrics: ``<metric>_up{<label>=...}`` and
    ``<metric>_failures_total``. The process's components use the defaults; the page
    targets the sender delivers to have a ``Health`` of their own (``triage_page_target``),
    which ``/readyz`` does not read (see ``triage.paging.sender``)."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic, *,
                 metric: str = "triage_component", label: str = "component") -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, ComponentState] = {}
        self._up: Gauge | None = None
        self._failures: Counter | None = None
        if registry is not None:
            self._up = Gauge(f"{metric}_up",
                             f"1 while the {label}'s last turn worked, 0 while it is failing and retrying",
                             [label], registry=registry)
            self._failures = Counter(f"{metric}_failures_total",
                                     f"Failed turns of a {label} (each retried with backoff)",
                                     [label], registry=registry)

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

    def failing(self, name: str, reason: str, exc: BaseException | None = None) -> None:
        """``exc``: log its traceback with the state change (for a bug; a dependency's
        failure is said in its reason alone)."""
        reason = redact(reason)
        with self._lock:
            before = self._states.get(name)
            changed = before is None or before.ok or before.reason != reason
            since = self._clock() if before is None or before.ok else before.since
            failures = 1 if before is None or before.ok else before.failures + 1
            self._states[name] = ComponentState(name, False, reason, since, failures)
        if changed:
            log.warning("%s is failing, retrying with backoff: %s", name, reason, exc_info=exc)
        if self._up is not None:
            self._up.labels(name).set(0)
        if self._failures is not None:
            self._failures.labels(name).inc()

    def states(self) -> list[ComponentState]:
        with self._lock:
            return sorted(self._states.values(), key=lambda s: s.name)

    def is_ok(self, name: str) -> bool:
        with self._lock:
            state = self._states.get(name)
        return state is None or state.ok


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


class DependencyFailure(RuntimeError):
    """A dependency's failure reported in another form than its own exception: the text
    a child process sent back about the database it could not reach, say."""


# What "a dependency failed" means: the database (connection lost or refused, a pool
# exhausted, SQLite locked), the broker (every kafka-python error), an HTTP peer, the
# network. Everything else that a turn raises is a bug in triage.
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError, sa.exc.TimeoutError,
    KafkaError, httpx.TransportError, OSError, DependencyFailure)


def is_dependency_failure(exc: BaseException) -> bool:
    return isinstance(exc, DEPENDENCY_ERRORS)


def describe(exc: BaseException) -> str:
    """One line for a log or ``/readyz``: the exception's type and the first line of its text."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    if isinstance(exc, DependencyFailure) or text[0].startswith(f"{type(exc).__name__}:"):
        return text[0]   # kafka-python's errors name their type in their text
    return f"{type(exc).__name__}: {text[0]}"


def report_failure(health: Health, name: str, exc: Exception) -> None:
    """``failing`` with the reason; a bug's traceback is logged with the state change."""
    if is_dependency_failure(exc):
        health.failing(name, describe(exc))
    else:
        health.failing(name, f"bug: {describe(exc)}", exc)


def run_loop(name: str, health: Health, stop: threading.Event, turn: Callable[[], float], *,
             backoff: Backoff, first_delay_s: float = 0.0) -> None:
    """``turn()`` until ``stop``, the first after ``first_delay_s``. A turn returns the
    pause before the next one; a turn that raises is reported (``failing``) and the next
    comes after ``backoff.next()``; one that works after failures reports ``ok``."""
    health.register(name)
    pause = first_delay_s
    while not stop.wait(pause):
        try:
            pause = turn()
        except Exception as exc:  # noqa: BLE001 - every failure of a turn is retried (module docstring)
            report_failure(health, name, exc)
            pause = backoff.next()
            continue
        backoff.reset()
        health.ok(name)
