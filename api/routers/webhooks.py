"""Webhook intake: what monitoring tools already send, translated, then handed to Kafka.

Each body is translated whole before anything is submitted, so a body with one bad alert
is refused (422 naming the field) and nothing of it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from datetime import datetime, timezone
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from triage.api.auth import IngestAccess, authorize, bearer_token
from triage.ingest.decode import parse_json
from triage.ingest.errors import InvalidEvent, NotJSON
from triage.ingest.event import Event
from triage.ingest.webhooks import (
    from_alertmanager, from_datadog, from_generic, from_grafana, from_pagerduty_event, from_pagerduty_webhook,
    verify_pagerduty_signature,
)
from triage.store.keys import Scope

router = APIRouter(tags=["webhooks"])


class EventSink(Protocol):
    def submit(self, events: list[Event]) -> None: ...


def get_sink(request: Request) -> EventSink:
    sink: EventSink | None = request.app.state.sink
    if sink is None:
        raise HTTPException(503, "this process takes no events (no broker configured)")
    return sink


SinkDep = Annotated[EventSink, Depends(get_sink)]


class Accepted(BaseModel):
    accepted: int
    event_ids: list[str]


def _unprocessable(msg: str, loc: list[str | int], kind: str = "value_error") -> HTTPException:
    return HTTPException(422, [{"loc": ["body", *loc], "msg": msg, "type": kind}])


async def json_body(request: Request) -> Any:
    try:
        return parse_json(await request.body())
    except NotJSON as exc:
        raise _unprocessable(f"malformed JSON: {exc.reason}", [], "json_invalid") from None


def field_path(field: str | None) -> list[str | int]:
    """'alerts[1].labels.severity' -> ['alerts', 1, 'labels', 'severity'], FastAPI's loc shape."""
    if not field:
        return []
    return [int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", field)]


def translate(fn: Callable[..., Any], payload: Any) -> Any:
    try:
        return fn(payload, received_at=datetime.now(timezone.utc))
    except InvalidEvent as exc:
        raise _unprocessable(exc.reason, field_path(exc.field)) from None


def submit(sink: EventSink, events: list[Event]) -> Accepted:
    try:
        sink.submit(events)
    except InvalidEvent as exc:
        raise _unprocessable(exc.reason, field_path(exc.field)) from None
    except Exception as exc:  # noqa: BLE001 - whatever the sink's failure, the caller must retry
        raise HTTPException(503, f"events not accepted, retry: {exc}") from exc
    return Accepted(accepted=len(events), event_ids=[e.id for e in events])


def _simple(fn: Callable[..., list[Event]], path: str, summary: str) -> None:
    async def endpoint(request: Request, _: IngestAccess, sink: SinkDep) -> Accepted:
        return submit(sink, translate(partial(fn, limits=request.app.state.limits), await json_body(request)))

    endpoint.__name__ = f"webhook_{path.rsplit('/', 1)[-1]}"
    router.add_api_route(path, endpoint, methods=["POST"], status_code=202, response_model=Accepted,
                         summary=summary)


_simple(from_alertmanager, "/webhooks/alertmanager", "Prometheus Alertmanager webhook (version 4)")
_simple(from_grafana, "/webhooks/grafana", "Grafana alerting webhook contact point")
_simple(from_datadog, "/webhooks/datadog", "Datadog webhook (triage's payload template)")
_simple(from_generic, "/webhooks/generic", "Events in triage's generic JSON format (one or a list)")


@router.post("/v2/enqueue", status_code=202, summary="PagerDuty Events API v2, answered as PagerDuty does")
@router.post("/webhooks/pagerduty/events", status_code=202, include_in_schema=False)
async def pagerduty_enqueue(request: Request, sink: SinkDep,
                            authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Tools configured for PagerDuty can point here: authenticate with a bearer ingest key,
    or put an ingest key in ``routing_key``."""
    payload = await json_body(request)
    try:
        result = translate(partial(from_pagerduty_event, limits=request.app.state.limits), payload)
    except HTTPException as exc:
        return _pagerduty_invalid(exc)
    authorize(request, Scope.ingest, bearer_token(authorization) or result.routing_key or None)
    try:
        submit(sink, result.events)
    except HTTPException as exc:
        if exc.status_code != 422:   # the broker's 503 stays as it is: the caller retries
            raise
        return _pagerduty_invalid(exc)
    return JSONResponse(result.response_body(), status_code=202)


def _pagerduty_invalid(exc: HTTPException) -> JSONResponse:
    """A 422 in the shape the Events API v2 answers an invalid event with."""
    errors = [d["msg"] for d in exc.detail] if isinstance(exc.detail, list) else [str(exc.detail)]
    return JSONResponse({"status": "invalid event", "message": "Event object is invalid", "errors": errors},
                        status_code=422)


class FeedbackAccepted(BaseModel):
    status: str
    event_id: str
    new: bool


@router.post("/webhooks/pagerduty", status_code=202, response_model=FeedbackAccepted,
             summary="PagerDuty Webhooks v3: responder actions become feedback",
             responses={401: {"description": "missing or wrong X-PagerDuty-Signature"}})
async def pagerduty_webhook(request: Request,
                            x_pagerduty_signature: Annotated[str | None, Header()] = None) -> FeedbackAccepted:
    raw = await request.body()
    secrets: list[str] = request.app.state.pagerduty_secrets
    if not secrets:
        raise HTTPException(401, "no PagerDuty webhook signing secret is configured "
                                 "(TRIAGE_PAGERDUTY_WEBHOOK_SECRETS)")
    if not verify_pagerduty_signature(raw, x_pagerduty_signature, secrets):
        raise HTTPException(401, "missing or wrong X-PagerDuty-Signature")
    feedback = translate(from_pagerduty_webhook, await json_body(request))
    new = request.app.state.feedback.add_pagerduty(feedback, datetime.now(timezone.utc))
    return FeedbackAccepted(status="ok", event_id=feedback.event_id, new=new)
