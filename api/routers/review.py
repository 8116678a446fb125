"""Figures for an operations review: how often triage's grouping was right according to
the responders who corrected it, and the on-call figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from triage.api.auth import ReadAccess
from triage.api.deps import StoreDep
from triage.api.params import Time
from triage.api.review_schemas import QualityPublic
from triage.services.quality import grouping_quality

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("/quality", response_model=QualityPublic)
def quality(
    store: StoreDep,
    _: ReadAccess,
    since: Annotated[Time | None, Query(description="events that occurred at or after")] = None,
    until: Annotated[Time | None, Query(description="events that occurred before")] = None,
) -> QualityPublic:
    """Triage's grouping scored against responders' merges and splits, over the events of
    every incident one touched: pairwise and B-cubed precision and recall, in total, per
    week and per parameters version. The responders' grouping (each event's incident now)
    is the truth; triage's is the incident it decided, the corrections undone. A merge of
    A into B says every A event belongs with every B event (triage missed those pairs);
    a split of S off I says no S event belongs with the rest of I (triage joined those
    pairs wrongly); the other pairs of those incidents count as triage decided them."""
    if since and until and since >= until:
        raise HTTPException(422, "since must be before until")
    return QualityPublic.of(grouping_quality(store.engine, since, until))
