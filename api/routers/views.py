"""Reads the web view needs beside the incident and stats routes: an incident's pages,
and the noise figures per hour or day."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from triage.api.auth import ReadAccess
from triage.api.deps import ReadsDep
from triage.api.params import IdPath, Time
from triage.api.view_schemas import IncidentPagesPublic, NoiseSeriesPublic
from triage.store.views import Bucket, TooManyBuckets

router = APIRouter()


@router.get("/incidents/{incident_id}/pages", response_model=IncidentPagesPublic, tags=["incidents"],
            responses={404: {"description": "no such incident"}})
def pages(incident_id: IdPath, store: ReadsDep, _: ReadAccess) -> IncidentPagesPublic:
    """An incident's pages: whether it paged, is held by auto-pause or was transient; the
    decisions that made each page due; and what each page target was sent, when, and why
    a page was not (the outbox)."""
    found = store.incident_pages(incident_id)
    if found is None:
        raise HTTPException(404, f"no incident {incident_id!r}")
    return IncidentPagesPublic.of(found)


@router.get("/stats/noise/series", response_model=NoiseSeriesPublic, tags=["stats"],
            responses={422: {"description": "a bad window, or more than 2000 buckets"}})
def series(
    store: ReadsDep,
    _: ReadAccess,
    since: Annotated[Time | None, Query(description="events that occurred at or after; default: the first")] = None,
    until: Annotated[Time | None, Query(description="events that occurred before; default: after the last")] = None,
    bucket: Annotated[Literal["hour", "day"], Query(description="bucket width, in UTC")] = "hour",
) -> NoiseSeriesPublic:
    """``/stats/noise``'s figures per hour or day of the events' own time: events in,
    duplicates suppressed, incidents and noise groups opened, pages. Empty buckets are
    listed with zeros; the buckets of a window add up to ``/stats/noise`` over it."""
    if since and until and since >= until:
        raise HTTPException(422, "since must be before until")
    try:
        return NoiseSeriesPublic.of(store.noise_series(Bucket(bucket), since, until))
    except TooManyBuckets as exc:
        raise HTTPException(422, str(exc)) from None
