"""Liveness and readiness, open to anyone (probes carry no key).

What a caller without a key learns from ``/readyz``: ready or not, and the names of the
checks and components that fail ("failing"), nothing more: no reasons, so no database
host, port or driver message. A caller whose key may read (and anyone while the API is
open) also gets each failure's reason, with credentials in URLs and ``password=`` values
masked and the driver's SQL and parameters left out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from triage.api.auth import bearer_token, may_read
from triage.api.schemas import Health
from triage.domain.health import redact as public_reason

router = APIRouter(tags=["health"])

FAILING = "failing"
class ReadyChecks:
    """The dependency checks ``/readyz`` runs, each answering within ``timeout_s`` or
    counted as failing. A check that hangs (a client's connect timeout can be 30 s) runs on
    in its own thread, and later calls wait on that same run instead of starting another:
    at most one thread per check, however often probes ask, and never a worker thread of
    the API held longer than ``timeout_s``."""

    def __init__(self, checks: Mapping[str, Callable[[], None]], timeout_s: float = 2.0) -> None:
        self.checks = dict(checks)
        self.timeout_s = timeout_s
        self._running: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def run(self) -> dict[str, BaseException | None]:
        """Each check's failure, or None for a check that answered."""
        with self._lock:
            runs = {}
            for name, check in self.checks.items():
                run = self._running.get(name)
                if run is None or run.done():
                    run = self._running[name] = _in_thread(check, f"triage-ready-{name}")
                runs[name] = run
        deadline = time.monotonic() + self.timeout_s
        results: dict[str, BaseException | None] = {}
        for name, run in runs.items():
            try:
                results[name] = run.exception(timeout=max(deadline - time.monotonic(), 0.0))
            except FutureTimeout:
                results[name] = TimeoutError(f"no answer within {self.timeout_s:g} s")
        return results


def _in_thread(check: Callable[[], None], name: str) -> Future[None]:
    # A daemon thread, not an executor's: a check hung at shutdown must not hold the exit.
    future: Future[None] = Future()

    def run() -> None:
        try:
            check()
        except BaseException as exc:  # noqa: BLE001 - whatever it raises is the check's answer
            future.set_exception(exc)
        else:
            future.set_result(None)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up and serving HTTP. ``async`` on purpose: it needs no worker
    thread, so it answers even while every thread is busy."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(request: Request, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Ready only when every dependency (the store, the broker) answers and no background
    component (consumer, sender, jobs) is failing. Without a key that may read, each
    failing check says only "failing"; with one, why."""
    checks: dict[str, str] = {}
    ready_checks: ReadyChecks = request.app.state.ready_checks
    for name, exc in ready_checks.run().items():
        if exc is None:
            checks[name] = "ok"
        else:
            reason = public_reason(str(exc))
            kind = type(exc).__name__
            checks[name] = f"failed: {reason if reason.startswith(kind) else f'{kind}: {reason}'}"[:300]
    for state in request.app.state.health.states():
        if not state.ok:
            checks[state.name] = f"failing ({state.failures} tries): {public_reason(state.reason)}"[:300]
    ok = all(v == "ok" for v in checks.values())
    if not ok and not may_read(request, bearer_token(authorization)):
        checks = {name: "ok" if value == "ok" else FAILING for name, value in checks.items()}
    body = Health(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
