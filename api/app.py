from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from triage import __version__
from triage.api.routers import events, health, incidents, metrics, stats
from triage.store import SqlStore


def create_app(store: SqlStore, *, ready_checks: Mapping[str, Callable[[], None]] | None = None,
               registry: CollectorRegistry | None = None) -> FastAPI:
    app = FastAPI(title="triage", version=__version__,
                  description="Alert correlation and triage: incidents with their evidence, noise statistics.")
    app.state.store = store
    app.state.ready_checks = dict(ready_checks or {"store": store.ping})
    app.state.registry = registry or CollectorRegistry()
    for module in (health, incidents, events, stats, metrics):
        app.include_router(module.router)
    return app
