from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from triage.api.auth import ReadAccess
from triage.api.deps import FamiliesDep
from triage.api.params import MAX_INT, Offset
from triage.api.schemas import FamilyDetail, FamilyPage, FamilyPublic

router = APIRouter(prefix="/families", tags=["families"])


@router.get("", response_model=FamilyPage)
def list_families(
    families: FamiliesDep,
    _: ReadAccess,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> FamilyPage:
    """Recurring alert families (alert templates that say the same thing in other words),
    from the newest periodic fit, most events first; an empty list before the first fit."""
    fit = families.latest()
    if fit is None:
        return FamilyPage(version=None, fitted_at=None, templates_fitted=0, total=0, limit=limit, offset=offset,
                          next_offset=None, items=[])
    stats = families.stats(fit.version)
    page = stats[offset:offset + limit]
    return FamilyPage(version=fit.version, fitted_at=fit.fitted_at, templates_fitted=fit.templates, total=len(stats),
                      limit=limit, offset=offset, next_offset=offset + limit if offset + limit < len(stats) else None,
                      items=[FamilyPublic.of(s) for s in page])


@router.get("/{family_id}", response_model=FamilyDetail, responses={404: {"description": "no such family"}})
def get_family(family_id: Annotated[int, Path(ge=0, le=MAX_INT)], families: FamiliesDep, _: ReadAccess) -> FamilyDetail:
    """One family of the newest fit with all its templates and their events. A family keeps
    its id from one fit to the next while it keeps most of its templates."""
    fit = families.latest()
    found = families.stats(fit.version, family_id) if fit is not None else []
    if fit is None or not found:
        raise HTTPException(404, f"no alert family {family_id} in the newest fit")
    return FamilyDetail.of_fit(found[0], fit)
