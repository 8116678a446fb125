"""Tuning: SREs read, change and roll back the correlation parameters. Every change is a
new version; new decisions use it at once, in every consumer, and record its number."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, Field, ValidationError

from triage.api.auth import AdminAccess, ReadAccess
from triage.api.params import MAX_INT, Text
from triage.models.parameters import CorrelationParameters
from triage.store.api_keys import ApiKey
from triage.store.parameters import ParameterStore, ParameterVersion, UnknownVersion

router = APIRouter(prefix="/models", tags=["models"])


class ParametersPublic(BaseModel):
    version: int
    values: dict[str, Any]
    author: str
    reason: str
    created_at: datetime | None

    @classmethod
    def of(cls, v: ParameterVersion) -> "ParametersPublic":
        return cls(version=v.version, values=v.parameters.model_dump(mode="json"), author=v.author,
                   reason=v.reason, created_at=v.created_at)


class ParametersChange(BaseModel):
    values: dict[str, Any] = Field(description="the parameters to change; the others keep their current value")
    reason: Text = Field(min_length=1, max_length=2000)
    author: Text | None = Field(None, max_length=200, description="who; defaults to the API key's name")


class Rollback(BaseModel):
    reason: Text | None = Field(None, max_length=2000)
    author: Text | None = Field(None, max_length=200)


def _store(request: Request) -> ParameterStore:
    parameters: ParameterStore = request.app.state.parameters
    return parameters


def _author(given: str | None, key: ApiKey | None) -> str:
    author = given or (key.name if key else None)
    if not author:
        raise HTTPException(422, [{"loc": ["body", "author"], "msg": "say who makes the change", "type": "missing"}])
    return author


@router.get("/parameters", response_model=ParametersPublic)
def current_parameters(request: Request, _: ReadAccess) -> ParametersPublic:
    """The parameters in force, and their version."""
    return ParametersPublic.of(_store(request).current())


@router.get("/parameters/versions", response_model=list[ParametersPublic])
def parameter_versions(request: Request, _: ReadAccess) -> list[ParametersPublic]:
    """Every version, newest first (version 0 is the built-in defaults)."""
    return [ParametersPublic.of(v) for v in _store(request).versions()]


@router.put("/parameters", response_model=ParametersPublic, status_code=201)
def change_parameters(change: ParametersChange, request: Request, key: AdminAccess) -> ParametersPublic:
    """Validate and save a new version. A value out of range, a negative window or an
    unknown name gets 422 naming the field, and nothing changes."""
    store = _store(request)
    merged = {**store.current().parameters.model_dump(), **change.values}
    try:
        parameters = CorrelationParameters.model_validate(merged)
    except ValidationError as exc:
        raise HTTPException(422, [{"loc": ["body", "values", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                                  for e in exc.errors()]) from None
    return ParametersPublic.of(store.put(parameters, author=_author(change.author, key), reason=change.reason))


@router.post("/parameters/rollback/{version}", response_model=ParametersPublic, status_code=201)
def rollback_parameters(version: Annotated[int, Path(ge=0, le=MAX_INT)], request: Request, key: AdminAccess,
                        body: Rollback | None = None) -> ParametersPublic:
    """Make an earlier version's values current again (as a new version)."""
    body = body or Rollback()
    try:
        return ParametersPublic.of(_store(request).rollback(version, author=_author(body.author, key),
                                                            reason=body.reason))
    except UnknownVersion as exc:
        raise HTTPException(404, str(exc)) from None
