"""Figures for an operations review: how often triage's grouping was right according to
the responders who corrected it, and the on-call figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from triage.api.auth import ReadAccess
from triage.api.deps import EngineDep
from triage.api.params import Time
from triage.api.review_schemas import OncallPublic, QualityPublic
from triage.services.oncall import GroupBy, NoTeams, TeamOf, oncall_report
from triage.services.quality import grouping_quality

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("/quality", response_model=QualityPublic)
def quality(
    engine: EngineDep,
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
    return QualityPublic.of(grouping_quality(engine, since, until))


@router.get("/oncall", response_model=OncallPublic,
            responses={422: {"description": "a bad window, or by=team without a service catalog naming teams"}})
def oncall(
    request: Request,
    engine: EngineDep,
    _: ReadAccess,
    since: Annotated[Time | None, Query(description="incidents opened at or after")] = None,
    until: Annotated[Time | None, Query(description="incidents opened before")] = None,
    by: Annotated[GroupBy, Query(description="figures per service (of the first firing alert) or per team")]
    = GroupBy.service,
) -> OncallPublic:
    """MTTD, MTTA and MTTR, alert precision (the share of pages someone acted on), pages per
    on-call person per week, the noisiest alert rules and the recurring causes (alert
    families), from the incidents' first events, their pages and what PagerDuty v3
    webhooks and the feedback API said about them. Each figure says which events it was
    computed from and how many incidents lacked the data."""
    if since and until and since >= until:
        raise HTTPException(422, "since must be before until")
    team_of: TeamOf | None = request.app.state.team_of
    try:
        return OncallPublic.of(oncall_report(engine, since, until, by=by, team_of=team_of))
    except NoTeams as exc:
        raise HTTPException(422, str(exc)) from None
