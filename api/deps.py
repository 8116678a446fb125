"""Dependencies the routers declare; the app factory puts the objects on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from triage.store import SqlStore
from triage.store.feedback import FeedbackStore
from triage.services.suggestions import SuggestionService


def get_store(request: Request) -> SqlStore:
    store: SqlStore = request.app.state.store
    return store


StoreDep = Annotated[SqlStore, Depends(get_store)]


def get_suggestions(request: Request) -> SuggestionService:
    service: SuggestionService = request.app.state.suggestions
    return service


SuggestionsDep = Annotated[SuggestionService, Depends(get_suggestions)]


def get_feedback(request: Request) -> FeedbackStore:
    feedback: FeedbackStore = request.app.state.feedback
    return feedback


FeedbackDep = Annotated[FeedbackStore, Depends(get_feedback)]
