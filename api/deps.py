"""Dependencies the routers declare; the app factory puts the objects on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from triage.store import SqlStore


def get_store(request: Request) -> SqlStore:
    store: SqlStore = request.app.state.store
    return store


StoreDep = Annotated[SqlStore, Depends(get_store)]
