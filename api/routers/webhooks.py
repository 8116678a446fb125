"""Webhook intake: what monitoring tools already send, translated, then handed to Kafka.

Each body is translated whole before anything is submitted, so a body with one bad alert
is refused (422 naming the field) and nothing of it is stored.

Only reading the body happens on the event loop. Parsing, translating, checking the key
and waiting for the broker's acknowledgement run in worker threads, at most
``WEBHOOK_THREADS`` at once (the others wait without holding a thread), so that a large
body or a slow broker delays webhooks, never ``/healthz`` or the other routes. A broker
that is down gets a 503 with Retry-After within seconds (``triage.ingest.sink``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any, Protocol, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from triage.api.auth import IngestAccess, authorize, bearer_token
from triage.ingest.decode import parse_json
from triage.domain.errors import InvalidEvent, NotJSON
from triage.domain.event import Event, Limits
from triage.ingest.webhooks import (
    from_alertmanager, from_datadog, from_generic, from_grafana, from_pagerduty_event, from_pagerduty_webhook,
    verify_pagerduty_signature,
)
from triage.ingest.sink import EventTooLarge, SinkUnavailable
from triage.store.api_keys import Scope

router = APIRouter(tags=["webhooks"])

WEBHOOK_THREADS = 8
_limiter: RunVar[CapacityLimiter] = RunVar("triage_webhook_limiter")
T = TypeVar("T")


class EventSink(Protocol):
    def submit(self, events: list[Event]) -> None:
        """Returns once the events are durably accepted; raises ``SinkUnavailable`` (retry
        later), ``EventTooLarge`` or ``InvalidEvent``. Blocks: called from a worker thread."""


def get_sink(request: Request) -> EventSink:
    sink: EventSink | None = request.app.state.sink
    if sink is None:
        raise HTTPException(503, "this process takes no events (no broker configured)")
    return sink


SinkDep = Annotated[EventSink, Depends(get_sink)]


class Accepted(BaseModel):
    accepted: int
    event_ids: list[str]


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, at most ``WEBHOOK_THREADS`` of them at once (one
    limiter per event loop, as anyio keeps its own default one)."""
    try:
        limiter = _limiter.get()
    except LookupError:
        limiter = CapacityLimiter(WEBHOOK_THREADS)
        _limiter.set(limiter)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=limiter)


def _unprocessable(msg: str, loc: list[str | int], kind: str = "value_error") -> HTTPException:
    return HTTPException(422, [{"loc": ["body", *loc], "msg": msg, "type": kind}])


def json_body(raw: bytes) -> Any:
    try:
        return parse_json(raw)
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
    except EventTooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    except SinkUnavailable as exc:
        raise HTTPException(503, f"events not accepted, retry: {exc}",
                            headers={"Retry-After": str(exc.retry_after_s)}) from None
    except Exception as exc:  # noqa: BLE001 - whatever the sink's failure, the caller must retry
        raise HTTPException(503, f"events not accepted, retry: {exc}") from exc
    return Accepted(accepted=len(events), event_ids=[e.id for e in events])


def _json_response(body: BaseModel | dict[str, Any], status_code: int) -> Response:
    """Rendered here, in the worker thread: a 20,000-event answer is not rendered on the loop."""
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return Response(json.dumps(data, separators=(",", ":")).encode(), status_code=status_code,
                    media_type="application/json")


def _simple(fn: Callable[..., list[Event]], path: str, summary: str) -> None:
    def accept(raw: bytes, sink: EventSink, limits: Limits) -> Response:
        return _json_response(submit(sink, translate(functools.partial(fn, limits=limits), json_body(raw))), 202)

    async def endpoint(request: Request, _: IngestAccess, sink: SinkDep) -> Response:
        return await off_loop(accept, await request.body(), sink, request.app.state.limits)

    endpoint.__name__ = f"webhook_{path.rsplit('/', 1)[-1]}"
    router.add_api_route(path, endpoint, methods=["POST"], status_code=202, response_model=Accepted,
                         summary=summary, responses={503: {"description": "the broker is unavailable: retry "
                                                                          "after the Retry-After seconds"}})


_simple(from_alertmanager, "/webhooks/alertmanager", "Prometheus Alertmanager webhook (version 4)")
_simple(from_grafana, "/webhooks/grafana", "Grafana alerting webhook contact point")
_simple(from_datadog, "/webhooks/datadog", "Datadog webhook (triage's payload template)")
_simple(from_generic, "/webhooks/generic", "Events in triage's generic JSON format (one or a list)")


@router.post("/v2/enqueue", status_code=202, summary="PagerDuty Events API v2, answered as PagerDuty does")
@router.post("/webhooks/pagerduty/events", status_code=202, include_in_schema=False)
async def pagerduty_enqueue(request: Request, sink: SinkDep,
                            authorization: Annotated[str | None, Header()] = None) -> Response:
    """Tools configured for PagerDuty can point here: authenticate with a bearer ingest key,
    or put an ingest key in ``routing_key``."""
    return await events_v2(request, sink, authorization, from_pagerduty_event)


async def events_v2(request: Request, sink: EventSink, authorization: str | None,
                    parse: Callable[..., Any]) -> Response:
    """One PagerDuty Events API v2 request (an alert event or a change event, by ``parse``),
    answered as PagerDuty answers: the key may come in ``routing_key``, so the body is
    parsed before the request is authorized, and an invalid event gets PagerDuty's 422."""
    limits: Limits = request.app.state.limits

    def accept(raw: bytes) -> Response:
        try:
            result = translate(functools.partial(parse, limits=limits), json_body(raw))
        except HTTPException as exc:
            return _pagerduty_invalid(exc)
        authorize(request, Scope.ingest, bearer_token(authorization) or result.routing_key or None)
        try:
            submit(sink, result.events)
        except HTTPException as exc:
            if exc.status_code != 422:   # the broker's 503 stays as it is: the caller retries
                raise
            return _pagerduty_invalid(exc)
        return _json_response(result.response_body(), 202)

    return await off_loop(accept, await request.body())


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
    def accept(raw: bytes) -> FeedbackAccepted:
        secrets: list[str] = request.app.state.pagerduty_secrets
        if not secrets:
            raise HTTPException(401, "no PagerDuty webhook signing secret is configured "
                                     "(TRIAGE_PAGERDUTY_WEBHOOK_SECRETS)")
        if not verify_pagerduty_signature(raw, x_pagerduty_signature, secrets):
            raise HTTPException(401, "missing or wrong X-PagerDuty-Signature")
        feedback = translate(from_pagerduty_webhook, json_body(raw))
        new = request.app.state.feedback.add_pagerduty(feedback, datetime.now(timezone.utc))
        return FeedbackAccepted(status="ok", event_id=feedback.event_id, new=new)

    return await off_loop(accept, await request.body())
