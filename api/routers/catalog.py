"""The service catalog: services (and datastores, the platform) and teams, read with the
``read`` scope and changed with ``admin``. Every change is a new version with who and why
(``triage.store.catalog``); a deletion too. ``GET /services/graph``: what depends on what,
declared and learned."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field

from triage.api.auth import AdminAccess, ReadAccess
from triage.api.deps import get_engine
from triage.api.params import Text
from triage.domain.event import storable_text
from triage.models.catalog import RESERVED_NAMES, PagerDutySpec, ServiceEntry, ServiceFields, TeamEntry, TeamFields
from triage.store.api_keys import ApiKey
from triage.store.catalog import CatalogConflict, CatalogStore, EntryKind, EntryVersion, UnknownEntry
from triage.store.service_map import GraphEdge, ServiceMap, load_service_map

router = APIRouter(tags=["catalog"])


def _path_name(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    return value


# A name as the catalog allows it (``triage.models.catalog``): a path segment, no NUL.
Name = Annotated[str, Path(min_length=1, max_length=200), AfterValidator(storable_text), AfterValidator(_path_name)]


def _not_reserved(value: str) -> str:
    if value in RESERVED_NAMES:
        raise ValueError(f"{value!r} is reserved (GET /services/{value} serves the service graph)")
    return value


ServiceName = Annotated[Name, AfterValidator(_not_reserved)]


class Why(BaseModel):
    reason: Text = Field(min_length=1, max_length=2000, description="why the change is made")
    author: Text | None = Field(None, max_length=200, description="who; defaults to the API key's name")


class ServicePut(ServiceFields, Why):
    """A service's fields, and who changes them and why."""


class TeamPut(TeamFields, Why):
    """A team's fields, and who changes them and why."""


class VersionInfo(BaseModel):
    version: int = Field(description="the entry's own version: 1, 2, …")
    revision: int = Field(description="the whole catalog's revision this version made")
    author: str
    reason: str
    origin: str = Field(description="api, or file (TRIAGE_CATALOG_FILE)")
    updated_at: datetime


class ServicePublic(ServiceFields, VersionInfo):
    name: str

    @classmethod
    def from_version(cls, v: EntryVersion) -> "ServicePublic":
        assert isinstance(v.entry, ServiceEntry)
        return cls(name=v.name, **ServiceFields.of(v.entry).model_dump(), **_info(v))


class TeamPublic(VersionInfo):
    name: str
    members: list[str]
    channels: list[str]
    rotation: str | None
    pagerduty: PagerDutySpec | None

    @classmethod
    def from_version(cls, v: EntryVersion) -> "TeamPublic":
        assert isinstance(v.entry, TeamEntry)
        return cls(name=v.name, **TeamFields.of(v.entry).model_dump(exclude={"slack"}), **_info(v))


class EntryVersionPublic(VersionInfo):
    name: str
    deleted: bool
    entry: dict[str, Any] | None = Field(description="the entry's fields in this version; null: deleted")

    @classmethod
    def from_version(cls, v: EntryVersion) -> "EntryVersionPublic":
        entry = None
        if isinstance(v.entry, ServiceEntry):
            entry = ServiceFields.of(v.entry).model_dump(mode="json")
        elif isinstance(v.entry, TeamEntry):
            entry = TeamFields.of(v.entry).model_dump(mode="json", exclude={"slack"})
        return cls(name=v.name, deleted=v.deleted, entry=entry, **_info(v))


def _info(v: EntryVersion) -> dict[str, Any]:
    return {"version": v.version, "revision": v.revision, "author": v.author, "reason": v.reason,
            "origin": v.origin.value, "updated_at": v.created_at}


def _store(request: Request) -> CatalogStore:
    return CatalogStore(get_engine(request))


def _author(given: str | None, key: ApiKey | None) -> str:
    author = given or (key.name if key else None)
    if not author:
        raise HTTPException(422, [{"loc": ["body", "author"], "msg": "say who makes the change", "type": "missing"}])
    return author


def _current(store: CatalogStore, kind: EntryKind, name: str) -> EntryVersion:
    found = store.get(kind, name)
    if found is None:
        raise HTTPException(404, f"no {kind.value} {name!r}")
    if found.deleted:
        raise HTTPException(404, f"{kind.value} {name!r} was deleted in its version {found.version} "
                                 f"by {found.author}: {found.reason}")
    return found


def _history(store: CatalogStore, kind: EntryKind, name: str) -> list[EntryVersionPublic]:
    versions = store.history(kind, name)
    if not versions:
        raise HTTPException(404, f"no {kind.value} {name!r}")
    return [EntryVersionPublic.from_version(v) for v in versions]


def _put(store: CatalogStore, entry: ServiceEntry | TeamEntry, body: Why, key: ApiKey | None,
         response: Response) -> EntryVersion:
    before = store.get(EntryKind.service if isinstance(entry, ServiceEntry) else EntryKind.team, entry.name)
    try:
        version, written = store.put(entry, author=_author(body.author, key), reason=body.reason)
    except CatalogConflict as exc:
        raise HTTPException(422, [{"loc": ["body", exc.field], "msg": exc.reason, "type": "value_error"}]) from None
    response.status_code = 201 if written and (before is None or before.deleted) else 200
    return version


def _delete(store: CatalogStore, kind: EntryKind, name: str, reason: str, author: str | None,
            key: ApiKey | None) -> EntryVersionPublic:
    who = author or (key.name if key else None)
    if not who:
        raise HTTPException(422, [{"loc": ["query", "author"], "msg": "say who makes the change", "type": "missing"}])
    try:
        return EntryVersionPublic.from_version(store.delete(kind, name, author=who, reason=reason))
    except UnknownEntry as exc:
        raise HTTPException(404, str(exc)) from None
    except CatalogConflict as exc:
        raise HTTPException(409, exc.reason) from None


Reason = Annotated[Text, Query(min_length=1, max_length=2000, description="why it is deleted")]
Author = Annotated[Text | None, Query(max_length=200, description="who; defaults to the API key's name")]


# -- the graph (before /services/{name}, which would take "graph" for a name) ------------

class EdgeSourcePublic(BaseModel):
    source: str = Field(description="declared (the catalog's depends_on), traces (spans' caller -> callee), "
                                    "logs (the service's log records or spans name the other) or "
                                    "placement (events of the service on the host)")
    first_seen: datetime | None
    last_seen: datetime | None
    count: int | None = Field(description="calls seen in traces")


class EdgePublic(BaseModel):
    source_node: str = Field(alias="from", serialization_alias="from")
    target_node: str = Field(alias="to", serialization_alias="to")
    relation: str = Field(description="depends_on (calls or uses) or runs_on (a service on a host)")
    last_seen: datetime | None
    sources: list[EdgeSourcePublic]

    @classmethod
    def of(cls, e: GraphEdge) -> "EdgePublic":
        return cls.model_validate({
            "from": e.source, "to": e.target, "relation": e.relation, "last_seen": e.last_seen,
            "sources": [EdgeSourcePublic(source=s.source, first_seen=s.first_seen, last_seen=s.last_seen,
                                         count=s.count) for s in e.sources]})


class NodePublic(BaseModel):
    id: str = Field(description="a catalog name, another service name seen, or host:<name>")
    kind: str = Field(description="service, datastore, platform (from the catalog), host, or unknown")
    team: str | None
    in_catalog: bool


class GraphPublic(BaseModel):
    nodes: list[NodePublic]
    edges: list[EdgePublic]

    @classmethod
    def of(cls, m: ServiceMap) -> "GraphPublic":
        return cls(nodes=[NodePublic(id=n.id, kind=n.kind, team=n.team, in_catalog=n.in_catalog) for n in m.nodes],
                   edges=[EdgePublic.of(e) for e in m.edges])


@router.get("/services/graph", response_model=GraphPublic, response_model_by_alias=True, tags=["catalog"])
def service_graph(request: Request, _: ReadAccess) -> GraphPublic:
    """The catalog's declared ``depends_on``, the caller -> callee calls spans showed, the
    services each service's log records named, and which service ran on which host, each
    edge with where it came from and when it was last seen (names the catalog knows as
    aliases are shown under the entry's name)."""
    return GraphPublic.of(load_service_map(get_engine(request), _store(request).catalog()))


# -- services ---------------------------------------------------------------------------

@router.get("/services", response_model=list[ServicePublic])
def list_services(request: Request, _: ReadAccess) -> list[ServicePublic]:
    """Every service, datastore and platform entry in force, by name."""
    return [ServicePublic.from_version(v) for v in _store(request).current(EntryKind.service)]


@router.get("/services/{name}", response_model=ServicePublic, responses={404: {"description": "no such service"}})
def get_service(name: ServiceName, request: Request, _: ReadAccess) -> ServicePublic:
    return ServicePublic.from_version(_current(_store(request), EntryKind.service, name))


@router.get("/services/{name}/versions", response_model=list[EntryVersionPublic])
def service_versions(name: ServiceName, request: Request, _: ReadAccess) -> list[EntryVersionPublic]:
    """Every version of the entry, newest first, deletions included."""
    return _history(_store(request), EntryKind.service, name)


@router.put("/services/{name}", response_model=ServicePublic,
            responses={201: {"description": "created"}, 422: {"description": "a field at fault, named"}})
def put_service(name: ServiceName, body: ServicePut, request: Request, response: Response,
                key: AdminAccess) -> ServicePublic:
    """Create or change a service: a new version (201 when created, 200 when changed or
    unchanged: a body equal to the version in force writes none). A team the catalog
    does not hold gets 422 naming ``team``."""
    entry = ServiceFields.model_validate(body.model_dump(exclude={"reason", "author"})).entry(name)
    return ServicePublic.from_version(_put(_store(request), entry, body, key, response))


@router.delete("/services/{name}", response_model=EntryVersionPublic)
def delete_service(name: ServiceName, reason: Reason, request: Request, key: AdminAccess,
                   author: Author = None) -> EntryVersionPublic:
    """Delete a service: a version recording the deletion (its history stays readable)."""
    return _delete(_store(request), EntryKind.service, name, reason, author, key)


# -- teams ------------------------------------------------------------------------------

@router.get("/teams", response_model=list[TeamPublic])
def list_teams(request: Request, _: ReadAccess) -> list[TeamPublic]:
    return [TeamPublic.from_version(v) for v in _store(request).current(EntryKind.team)]


@router.get("/teams/{name}", response_model=TeamPublic, responses={404: {"description": "no such team"}})
def get_team(name: Name, request: Request, _: ReadAccess) -> TeamPublic:
    return TeamPublic.from_version(_current(_store(request), EntryKind.team, name))


@router.get("/teams/{name}/versions", response_model=list[EntryVersionPublic])
def team_versions(name: Name, request: Request, _: ReadAccess) -> list[EntryVersionPublic]:
    return _history(_store(request), EntryKind.team, name)


@router.put("/teams/{name}", response_model=TeamPublic, responses={201: {"description": "created"}})
def put_team(name: Name, body: TeamPut, request: Request, response: Response, key: AdminAccess) -> TeamPublic:
    """Create or change a team: a new version (201 when created)."""
    entry = TeamFields.model_validate(body.model_dump(exclude={"reason", "author"})).entry(name)
    return TeamPublic.from_version(_put(_store(request), entry, body, key, response))


@router.delete("/teams/{name}", response_model=EntryVersionPublic,
               responses={409: {"description": "the team still owns services"}})
def delete_team(name: Name, reason: Reason, request: Request, key: AdminAccess,
                author: Author = None) -> EntryVersionPublic:
    return _delete(_store(request), EntryKind.team, name, reason, author, key)
