from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from triage.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up and serving HTTP. ``async`` on purpose: it needs no worker
    thread, so it answers even while every thread is busy."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(request: Request) -> JSONResponse:
    """Ready only when every dependency (the store, the broker) answers and no background
    component (consumer, sender, jobs) is failing."""
    checks: dict[str, str] = {}
    for name, check in request.app.state.ready_checks.items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "not ready"
            checks[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
    for state in request.app.state.health.states():
        if not state.ok:
            checks[state.name] = f"failing ({state.failures} tries): {state.reason}"[:300]
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
