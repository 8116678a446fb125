from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException

from triage import __version__
from triage.api.auth import STORE_RETRY_AFTER_S, KeyGate
from triage.domain.health import Health
from triage.api.limits import BodySizeLimit
from triage.api.routers import (
    catalog, changes, events, families, incidents, metrics, models, review, stats, views, webhooks, whatif,
)
from triage.api.routers import docs as docs_pages
from triage.api.routers import health as health_routes
from triage.api.routers import ui as web_view
from triage.api.routers.health import ReadyChecks
from triage.api.routers.webhooks import EventSink
from triage.domain.event import Limits
from triage.models.embedder import Embedder
from triage.models.topology import host_zones
from triage.services.corrections import Corrections
from triage.services.oncall import TeamOf
from triage.services.oncall_metrics import OncallCollector
from triage.services.suggestions import SuggestionService
from triage.services.triage_context import TriageContextService
from triage.store import SqlStore
from triage.store.api_keys import ApiKeyStore
from triage.store.family_fits import FamilyStore
from triage.store.feedback import FeedbackStore
from triage.store.parameters import ParameterStore

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024


def create_app(store: SqlStore, *, embedder: Embedder, ready_checks: Mapping[str, Callable[[], None]] | None = None,
               registry: CollectorRegistry | None = None, sink: EventSink | None = None,
               pagerduty_secrets: list[str] | None = None, max_body_bytes: int = DEFAULT_MAX_BODY,
               page_targets: list[str] | None = None, health: Health | None = None,
               open_api: bool | None = None, limits: Limits | None = None,
               topology_file: Path | None = None, team_of: TeamOf | None = None) -> FastAPI:
    """The API over ``store``, whose routers read through ``StoreReads``. ``embedder`` is
    the process's (a split recomputes the incidents' centroids with it). ``sink`` takes events accepted by the webhooks (Kafka in
    production); without one the webhooks answer 503. ``page_targets`` are where pages go
    (the outbox's targets): a merge resolves the pages of the incidents merged away.
    ``health`` is the process's background components' state, shown by ``/readyz``.
    ``limits`` bound the events the webhooks accept (the consumers' own, ``Settings.limits``);
    request bodies are bounded by ``max_body_bytes``. ``topology_file``: the declared service
    dependencies the consumers use (``TRIAGE_TOPOLOGY_FILE``), for the what-if's replays.
    ``team_of``: each service's team (a service catalog's owners), for ``/stats/oncall?by=team``.

    ``open_api`` is the start-up decision to serve without keys (see ``triage.api.auth``);
    a process that listens on a socket decides it with the address in view
    (``Runtime.check_api_exposure``). Left out, it is taken now from the store alone: open
    only if no API key was ever created."""
    app = FastAPI(title="triage", version=__version__,
                  description="Alert correlation and triage: incidents with their evidence, noise statistics, "
                              "webhook intake.",
                  docs_url=None, redoc_url=None)   # served with local assets: triage.api.routers.docs
    keys = ApiKeyStore(store.engine)
    app.state.reads = store
    app.state.ready_checks = ReadyChecks(ready_checks or {"store": store.ping})
    app.state.registry = registry or CollectorRegistry()
    app.state.health = health or Health()
    app.state.sink = sink
    app.state.limits = limits or Limits(max_message_bytes=max_body_bytes)
    app.state.key_gate = KeyGate(keys, open_mode=not keys.any_created() if open_api is None else open_api)
    app.state.feedback = FeedbackStore(store.engine)
    app.state.suggestions = SuggestionService(store)
    app.state.triage = TriageContextService(store, zones=host_zones(topology_file) if topology_file else None)
    app.state.corrections = Corrections(store, embedder, page_targets or [])
    app.state.embedder = embedder   # the what-if's replays
    app.state.engine = store.engine   # the review figures' queries (triage.services.quality, .oncall)
    app.state.parameters = ParameterStore(store.engine)
    app.state.families = FamilyStore(store.engine)
    app.state.pagerduty_secrets = list(pagerduty_secrets or [])
    app.state.page_targets = list(page_targets or [])
    app.state.topology_file = topology_file
    app.state.team_of = team_of
    try:
        app.state.registry.register(OncallCollector(store.engine))
    except ValueError:   # another app already exports them on this registry (tests build several)
        log.debug("the on-call figures are already on this registry")
    for module in (health_routes, incidents, views, events, families, stats, review, metrics, whatif, models,
                   webhooks, catalog, changes):
        app.include_router(module.router)
    docs_pages.install(app)
    web_view.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(sa.exc.OperationalError, _store_unavailable)
    app.add_exception_handler(sa.exc.InterfaceError, _store_unavailable)
    app.add_exception_handler(sa.exc.TimeoutError, _store_unavailable)
    app.add_exception_handler(sa.exc.DataError, _value_refused)
    return app


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database is down or unreachable: the caller should retry, and learns nothing
    of the driver's message (hosts, ports); ``/readyz`` says more to those who may read."""
    log.debug("store unavailable for %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": "the store is unavailable; retry"}, status_code=503,
                        headers={"Retry-After": str(STORE_RETRY_AFTER_S)})


async def _value_refused(request: Request, exc: Exception) -> JSONResponse:
    """A value of the request the database cannot hold. The parameters are validated
    before any query (422 naming the field); this is the backstop, so that it is never a 500."""
    log.info("the store refused a value of %s %s: %s", request.method, request.url.path,
             str(exc).splitlines()[0][:300])
    return JSONResponse({"detail": "a value of the request cannot be stored or searched for"}, status_code=422)


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped. Error bodies quote what the caller
    sent, and a lone surrogate (JSON's ``"\\ud800"``) has no UTF-8 form: written as an
    escape it is valid JSON, where the default rendering fails with a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return AsciiJSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
