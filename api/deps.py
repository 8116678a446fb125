"""Dependencies the routers declare; the app factory puts the objects on app.state.

The routers read through ``StoreReads`` (``triage.store.reads``), not the whole store:
writes go through the objects made for them (corrections, feedback, parameters)."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from triage.services.corrections import Corrections
from triage.services.suggestions import SuggestionService
from triage.services.triage_context import TriageContextService
from triage.store import StoreReads
from triage.store.family_fits import FamilyStore
from triage.store.feedback import FeedbackStore


def get_engine(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.engine
    return engine


EngineDep = Annotated[sa.Engine, Depends(get_engine)]


def get_reads(request: Request) -> StoreReads:
    reads: StoreReads = request.app.state.reads
    return reads


ReadsDep = Annotated[StoreReads, Depends(get_reads)]


def get_suggestions(request: Request) -> SuggestionService:
    service: SuggestionService = request.app.state.suggestions
    return service


SuggestionsDep = Annotated[SuggestionService, Depends(get_suggestions)]


def get_triage(request: Request) -> TriageContextService:
    service: TriageContextService = request.app.state.triage
    return service


TriageDep = Annotated[TriageContextService, Depends(get_triage)]


def get_feedback(request: Request) -> FeedbackStore:
    feedback: FeedbackStore = request.app.state.feedback
    return feedback


FeedbackDep = Annotated[FeedbackStore, Depends(get_feedback)]


def get_corrections(request: Request) -> Corrections:
    corrections: Corrections = request.app.state.corrections
    return corrections


CorrectionsDep = Annotated[Corrections, Depends(get_corrections)]


def get_families(request: Request) -> FamilyStore:
    families: FamilyStore = request.app.state.families
    return families


FamiliesDep = Annotated[FamilyStore, Depends(get_families)]
