from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from triage import __version__
from triage.api.auth import KeyGate
from triage.health import Health
from triage.api.limits import BodySizeLimit
from triage.api.routers import events, families, incidents, metrics, models, stats, webhooks
from triage.api.routers import health as health_routes
from triage.api.routers.webhooks import EventSink
from triage.ingest.event import Limits
from triage.store import SqlStore
from triage.store.feedback import FeedbackStore
from triage.store.keys import ApiKeyStore
from triage.suggestions import SuggestionService

DEFAULT_MAX_BODY = 1024 * 1024


def create_app(store: SqlStore, *, ready_checks: Mapping[str, Callable[[], None]] | None = None,
               registry: CollectorRegistry | None = None, sink: EventSink | None = None,
               pagerduty_secrets: list[str] | None = None, max_body_bytes: int = DEFAULT_MAX_BODY,
               page_targets: list[str] | None = None, health: Health | None = None,
               limits: Limits | None = None) -> FastAPI:
    """The API over ``store``. ``sink`` takes events accepted by the webhooks (Kafka in
    production); without one the webhooks answer 503. ``page_targets`` are where pages go
    (the outbox's targets): a merge resolves the pages of the incidents merged away.
    ``health`` is the process's background components' state, shown by ``/readyz``.
    ``limits`` bound the events the webhooks accept (the consumers' own, ``Settings.limits``);
    request bodies are bounded by ``max_body_bytes``."""
    app = FastAPI(title="triage", version=__version__,
                  description="Alert correlation and triage: incidents with their evidence, noise statistics, "
                              "webhook intake.")
    app.state.store = store
    app.state.ready_checks = dict(ready_checks or {"store": store.ping})
    app.state.registry = registry or CollectorRegistry()
    app.state.health = health or Health()
    app.state.sink = sink
    app.state.limits = limits or Limits(max_message_bytes=max_body_bytes)
    app.state.key_gate = KeyGate(ApiKeyStore(store.engine))
    app.state.feedback = FeedbackStore(store.engine)
    app.state.suggestions = SuggestionService(store)
    app.state.pagerduty_secrets = list(pagerduty_secrets or [])
    app.state.page_targets = list(page_targets or [])
    for module in (health_routes, incidents, events, families, stats, metrics, models, webhooks):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    return app
