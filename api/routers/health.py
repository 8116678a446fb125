"""Liveness and readiness, open to anyone (probes carry no key).

What a caller without a key learns from ``/readyz``: ready or not, and the names of the
checks and components that fail ("failing"), nothing more: no reasons, so no database
host, port or driver message. A caller whose key may read (and anyone while the API is
open) also gets each failure's reason, with credentials in URLs and ``password=`` values
masked and the driver's SQL and parameters left out.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from triage.api.auth import bearer_token, may_read
from triage.api.schemas import Health

router = APIRouter(tags=["health"])

FAILING = "failing"
_USERINFO = re.compile(r"(\b[a-zA-Z][\w+.-]*://)[^/\s@]*@")
_PASSWORD = re.compile(r"(password\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)", re.IGNORECASE)
# What SQLAlchemy appends to a driver's message: the statement, its parameters (data), a link.
_DRIVER_DETAIL = re.compile(r"\s*(\[SQL: |\[parameters: |\(Background on this error at)")


def public_reason(reason: str) -> str:
    """A failure's reason as a reader may see it: its first line without the SQL and its
    parameters, credentials masked, 300 characters."""
    first = reason.strip().splitlines()[0] if reason.strip() else ""
    first = _DRIVER_DETAIL.split(first, maxsplit=1)[0]
    first = _USERINFO.sub(r"\1***@", first)
    return _PASSWORD.sub(r"\1***", first)[:300]


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
    for name, check in request.app.state.ready_checks.items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "not ready"
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
