from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from triage.api.auth import IngestAccess, ReadAccess
from triage.api.deps import CorrectionsDep, FeedbackDep, ReadsDep, SuggestionsDep, TriageDep
from triage.api.params import IdPath, Offset, Text, Time
from triage.api.schemas import (
    EventPublic, IncidentDetail, IncidentPage, IncidentPublic, MergeIn, ResolutionAccepted, ResolutionIn, SplitIn,
)
from triage.api.triage_schemas import TriagePublic
from triage.store import IncidentConflict, IncidentQuery

router = APIRouter(prefix="/incidents", tags=["incidents"])


@router.get("", response_model=IncidentPage)
def list_incidents(
    store: ReadsDep,
    _: ReadAccess,
    status: Literal["open", "resolved", "merged"] | None = None,
    kind: Annotated[Literal["incident", "noise", "all"], Query(
        description="incident (the default): groups that page; noise: noise groups, which page nobody; all")] = "incident",
    service: Annotated[Text | None, Query(max_length=200)] = None,
    since: Annotated[Time | None, Query(description="active at or after (RFC 3339)")] = None,
    until: Annotated[Time | None, Query(description="opened at or before (RFC 3339)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> IncidentPage:
    """Incidents, newest first; with ``kind``, noise groups instead or as well."""
    page = store.list_incidents(IncidentQuery(status=status, kind=None if kind == "all" else kind, service=service,
                                              since=since, until=until, limit=limit, offset=offset))
    next_offset = offset + limit if offset + limit < page.total else None
    return IncidentPage(items=[IncidentPublic.of(i) for i in page.items], total=page.total,
                        limit=limit, offset=offset, next_offset=next_offset)


@router.get("/{incident_id}", response_model=IncidentDetail, responses={404: {"description": "no such incident"}})
def get_incident(
    incident_id: IdPath,
    store: ReadsDep,
    suggestions: SuggestionsDep,
    triage: TriageDep,
    _: ReadAccess,
    limit: Annotated[int, Query(ge=1, le=5000, description="events to include")] = 1000,
    offset: Offset = 0,
) -> IncidentDetail:
    """One incident with its events, each with the reason it joined; what similar past
    incidents suggest (who resolved them and what fixed them); and its triage: probable
    cause, recent changes, owner team, responders, remediations and similar incidents,
    each with its evidence."""
    record = store.get_incident(incident_id)
    if record is None:
        raise HTTPException(404, f"no incident {incident_id!r}")
    events = store.incident_events(incident_id, limit=limit, offset=offset)
    return IncidentDetail(**IncidentPublic.of(record).model_dump(),
                          events=[EventPublic.of(e) for e in events], events_total=record.event_count,
                          **suggestions.for_incident(incident_id).document(),
                          triage=TriagePublic.of(triage.for_incident(incident_id)))


@router.post("/{incident_id}/resolution", response_model=ResolutionAccepted, status_code=201,
             responses={404: {"description": "no such incident"}})
def record_resolution(incident_id: IdPath, body: ResolutionIn, store: ReadsDep, feedback: FeedbackDep,
                      _: IngestAccess) -> ResolutionAccepted:
    """Who resolved an incident and what fixed it, for teams not on PagerDuty (whose
    webhooks say the same): similar incidents later get this responder and this note
    suggested. A later resolution of the same incident replaces it."""
    if store.get_incident(incident_id) is None:
        raise HTTPException(404, f"no incident {incident_id!r}")
    now = datetime.now(timezone.utc)
    feedback.add_resolution(incident_id, responder=body.responder, note=body.note,
                            resolved_at=body.resolved_at or now, received_at=now)
    return ResolutionAccepted(incident_id=incident_id, responder=body.responder, note=body.note)


@router.post("/{incident_id}/merge", response_model=IncidentPublic,
             responses={404: {"description": "no such incident"}, 409: {"description": "cannot be merged as asked"}})
def merge_incidents(incident_id: IdPath, body: MergeIn, corrections: CorrectionsDep,
                    _: IngestAccess) -> IncidentPublic:
    """Merge other incidents into this one: their events and alerts move here, later events
    of the same alerts join here, and their pages are resolved. Each merged incident stays
    readable with status ``merged`` and ``merged_into``. Recorded as feedback, with who and why."""
    try:
        record = corrections.merge(incident_id, body.incidents, author=body.author, reason=body.reason)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except IncidentConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return IncidentPublic.of(record)


@router.post("/{incident_id}/split", response_model=IncidentPublic, status_code=201,
             responses={404: {"description": "no such incident"}, 409: {"description": "cannot be split as asked"}})
def split_incident(incident_id: IdPath, body: SplitIn, corrections: CorrectionsDep,
                   _: IngestAccess) -> IncidentPublic:
    """Split events off into a new incident (returned): both are recomputed from the events
    they then hold, later repeats of a moved alert follow it, and the new incident pages on
    its next alert. Recorded as feedback, with who and why."""
    try:
        record = corrections.split(incident_id, body.events, author=body.author, reason=body.reason)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except IncidentConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return IncidentPublic.of(record)
