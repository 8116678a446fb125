from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from triage.api.auth import ReadAccess
from triage.api.deps import ReadsDep
from triage.api.params import Time
from triage.api.schemas import NoiseStatsPublic

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("/noise", response_model=NoiseStatsPublic)
def noise(
    store: ReadsDep,
    _: ReadAccess,
    since: Annotated[Time | None, Query(description="events that occurred at or after")] = None,
    until: Annotated[Time | None, Query(description="events that occurred before")] = None,
) -> NoiseStatsPublic:
    """Events in, duplicates suppressed, incidents opened, compression = 1 - incidents/events;
    in total, by source and by service."""
    if since and until and since >= until:
        raise HTTPException(422, "since must be before until")
    return NoiseStatsPublic.of(store.noise_stats(since, until), since, until)
