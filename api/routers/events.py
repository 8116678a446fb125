from __future__ import annotations

from fastapi import APIRouter, HTTPException

from triage.api.auth import ReadAccess
from triage.api.deps import ReadsDep
from triage.api.params import IdPath
from triage.api.schemas import EventPublic

router = APIRouter(prefix="/events", tags=["events"])


@router.get("/{event_id}", response_model=EventPublic, responses={404: {"description": "no such event"}})
def get_event(event_id: IdPath, store: ReadsDep, _: ReadAccess) -> EventPublic:
    """One stored event, and which incident it joined and why."""
    stored = store.get_event(event_id)
    if stored is None:
        raise HTTPException(404, f"no event {event_id!r}")
    return EventPublic.of(stored)
