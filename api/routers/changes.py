"""Changes in (PagerDuty change events, triage's change webhook) and out (``GET /changes``).

Intake goes through Kafka like every other event (``triage.api.routers.webhooks``): the
change is produced as the log record that carries it, answered 202 once the broker has
it, and the consumer records it (``triage.store.changes``). A change never pages and
never joins an incident.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response

from triage.api.auth import IngestAccess, ReadAccess
from triage.api.deps import get_engine
from triage.api.params import Offset, Text, Time
from triage.api.routers.webhooks import (Accepted, SinkDep, _json_response, events_v2, json_body, off_loop, submit,
                                         translate)
from triage.api.triage_schemas import ChangeFields
from triage.domain.change import Change
from triage.domain.event import Limits
from triage.ingest.changes import from_change_webhook, from_pagerduty_change
from triage.store.changes import ChangeStore

router = APIRouter(tags=["changes"])


@router.post("/webhooks/change", status_code=202, response_model=Accepted,
             summary="Changes (deploys, configuration, flags) in triage's own JSON (one or a list)",
             responses={503: {"description": "the broker is unavailable: retry after the Retry-After seconds"}})
async def change_webhook(request: Request, _: IngestAccess, sink: SinkDep) -> Response:
    limits: Limits = request.app.state.limits

    def accept(raw: bytes) -> Response:
        events = translate(functools.partial(from_change_webhook, limits=limits), json_body(raw))
        return _json_response(submit(sink, events), 202)

    return await off_loop(accept, await request.body())


@router.post("/v2/change/enqueue", status_code=202,
             summary="PagerDuty Events API v2 change events, answered as PagerDuty does")
async def pagerduty_change(request: Request, sink: SinkDep,
                           authorization: Annotated[str | None, Header()] = None) -> Response:
    """Tools configured to send PagerDuty change events can point here: authenticate with
    a bearer ingest key, or put an ingest key in ``routing_key``."""
    return await events_v2(request, sink, authorization, from_pagerduty_change)


class ChangePublic(ChangeFields):
    description: str
    source: str
    previous_version: str | None

    @classmethod
    def of(cls, c: Change) -> "ChangePublic":
        return cls(id=c.id, service=c.service, kind=c.kind.value, occurred_at=c.occurred_at, summary=c.summary,
                   description=c.description, source=c.source, version=c.version,
                   previous_version=c.previous_version, who=c.who, link=c.link)


@router.get("/changes", response_model=list[ChangePublic])
def list_changes(
    request: Request,
    _: ReadAccess,
    service: Annotated[list[Text] | None, Query(max_length=100, description="only these services (repeat it)")] = None,
    since: Annotated[Time | None, Query(description="at or after (RFC 3339)")] = None,
    until: Annotated[Time | None, Query(description="at or before (RFC 3339)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[ChangePublic]:
    """Recorded changes, newest first."""
    if service is not None and any(len(s) > 200 for s in service):
        raise HTTPException(422, [{"loc": ["query", "service"], "msg": "at most 200 characters", "type": "too_long"}])
    found = ChangeStore(get_engine(request)).changes_near(service, since, until, limit=limit,
                                                                     offset=offset)
    return [ChangePublic.of(c) for c in found]
