"""What-if before apply: what candidate parameter values would have done to a stored
window, next to the values in force. Nothing in force changes (that is ``PUT /models/parameters``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from pydantic import ValidationError

from triage.api.auth import AdminAccess
from triage.api.deps import get_engine
from triage.api.whatif_schemas import PreviewIn, PreviewPublic
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph
from triage.services.whatif import PREVIEW_LOCK, WindowTooLarge, what_if
from triage.store.parameters import ParameterStore

router = APIRouter(prefix="/models", tags=["models"])

# About a minute and a half on the 2-core machine (docs/benchmarks.md, "What-if"): beyond
# that an HTTP request is the wrong tool; `triage whatif` takes any window.
MAX_PREVIEW_EVENTS = 500_000
BUSY_RETRY_AFTER_S = 10


@router.post("/parameters/preview", response_model=PreviewPublic,
             responses={422: {"description": "a bad value or window, or too many events"},
                        429: {"description": "another preview is running in this process"}})
def preview(body: PreviewIn, request: Request, _: AdminAccess) -> PreviewPublic:
    """Replay the stored events of [since, until) offline, through fresh correlators, with
    the candidate values and with the values in force, and answer with both side by side:
    pages, noise pages, incidents, compression, the incidents that would merge or split,
    and, where responders merged or split incidents of the window, each grouping's
    precision and recall against theirs. Nothing in force changes; apply with
    ``PUT /models/parameters``."""
    in_force = ParameterStore(get_engine(request)).current()
    try:
        candidate = CorrelationParameters.model_validate({**in_force.parameters.model_dump(), **body.values})
    except ValidationError as exc:
        raise HTTPException(422, [{"loc": ["body", "values", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                                  for e in exc.errors()]) from None
    if body.since >= body.until:
        raise HTTPException(422, "since must be before until")
    topology_file: Path | None = request.app.state.topology_file
    topology: Callable[[], ServiceGraph] | None = (
        (lambda: ServiceGraph.from_topology(topology_file)) if topology_file is not None else None)
    if not PREVIEW_LOCK.acquire(blocking=False):
        raise HTTPException(429, "another preview is running; retry when it is done",
                            headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})
    try:
        result = what_if(get_engine(request), candidate, in_force.parameters, body.since, body.until,
                         transient_s=body.transient_s, topology=topology, max_events=MAX_PREVIEW_EVENTS,
                         embedder=request.app.state.embedder)
    except WindowTooLarge as exc:
        raise HTTPException(422, str(exc)) from None
    finally:
        PREVIEW_LOCK.release()
    return PreviewPublic.of(result, in_force.version)
