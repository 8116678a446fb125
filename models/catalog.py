"""The service catalog: each component (service, datastore, the platform) with its owning
team, owners, dependencies and runbooks; each team with its members and channels.

Plain frozen dataclasses, no I/O: what the ranking of probable causes, responders and
remediations takes as input, whether the catalog came from the store
(``triage.store.catalog``), a file (``TRIAGE_CATALOG_FILE``) or a labeled data set.

The YAML shape is that of ../shared/data/alerts/*/services.yaml::

    services:
      - service: cartservice
        kind: service                 # service | datastore | platform
        team: cart
        owners: [amara.ruiz, nadia.berg]
        depends_on: [redis-cart]
        aliases: [cart]               # other names events use for it (optional)
        runbooks:
          - {title: "Rollback a bad deploy", url: "https://…", tags: [deploy, rollback]}
        pagerduty: {service_id: PXXXXXX, escalation_policy_id: PYYYYYY}   # optional
    teams:
      - team: cart
        members: [amara.ruiz, nadia.berg, lea.kim]
        slack: "#cart-oncall"         # or channels: ["#cart-oncall", …]
        rotation: weekly primary + secondary

``Catalog.from_yaml`` refuses anything else with the line and the field at fault
(``CatalogError``): an unknown key, a missing name, a team no entry of ``teams`` names,
a name given twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, Final

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from triage.domain.event import storable_text

__all__ = ["Catalog", "CatalogError", "ComponentKind", "PagerDutyRefs", "RESERVED_NAMES", "Runbook", "ServiceEntry",
           "ServiceFields", "TeamEntry", "TeamFields"]


class ComponentKind(str, Enum):
    service = "service"
    datastore = "datastore"
    platform = "platform"   # the cluster and its nodes: who owns what runs beneath the services


@dataclass(frozen=True)
class Runbook:
    title: str
    url: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PagerDutyRefs:
    """Ids of the PagerDuty objects an entry corresponds to (optional)."""

    service_id: str | None = None
    escalation_policy_id: str | None = None
    schedule_id: str | None = None


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    kind: ComponentKind = ComponentKind.service
    team: str | None = None
    owners: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    runbooks: tuple[Runbook, ...] = ()
    aliases: tuple[str, ...] = ()   # other names the events use for it
    pagerduty: PagerDutyRefs | None = None


@dataclass(frozen=True)
class TeamEntry:
    name: str
    members: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()   # "#cart-oncall", an e-mail address, …
    rotation: str | None = None      # free text: how the team is on call
    pagerduty: PagerDutyRefs | None = None


@dataclass(frozen=True)
class Catalog:
    services: dict[str, ServiceEntry] = field(default_factory=dict)
    teams: dict[str, TeamEntry] = field(default_factory=dict)
    # name or alias -> entry name, built once
    _names: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: dict[str, str] = {}
        for entry in self.services.values():
            for alias in entry.aliases:
                names.setdefault(alias, entry.name)
        names.update({name: name for name in self.services})   # a name wins over another's alias
        object.__setattr__(self, "_names", names)

    def service(self, name: str | None) -> ServiceEntry | None:
        """The entry named ``name``, or the one that lists it among its aliases."""
        if not name:
            return None
        found = self._names.get(name)
        return self.services[found] if found is not None else None

    def team_of(self, service: str | None) -> TeamEntry | None:
        entry = self.service(service)
        return self.teams.get(entry.team) if entry is not None and entry.team else None

    @classmethod
    def from_yaml(cls, text: str) -> "Catalog":
        """Parse and check a catalog; ``CatalogError`` names the line and field at fault."""
        return _parse(text)

    @classmethod
    def of(cls, services: Iterable[ServiceEntry] = (), teams: Iterable[TeamEntry] = ()) -> "Catalog":
        return cls({s.name: s for s in services}, {t.name: t for t in teams})

    def document(self) -> dict[str, Any]:
        """The catalog in its YAML shape (JSON-ready): ``from_yaml`` reads it back."""
        return {"services": [{"service": s.name, **ServiceFields.of(s).document()} for s in self.services.values()],
                "teams": [{"team": t.name, **TeamFields.of(t).document()} for t in self.teams.values()]}


class CatalogError(ValueError):
    """A catalog that cannot be used: where (``line``, 1-based, when known; ``field``, a
    path such as ``services[3].runbooks[0].url``) and why."""

    def __init__(self, reason: str, field: str | None = None, line: int | None = None) -> None:
        where = ", ".join(p for p in (f"line {line}" if line else None, field) if p)
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason, self.field, self.line = reason, field, line


# --------------------------------------------------------------------------- validation

# GET /services/graph is the graph, not an entry: a service of that name could not be read.
RESERVED_NAMES: Final = frozenset({"graph"})
_MAX_ITEMS = 1000


def _entry_name(value: str) -> str:
    # Names are path segments of /services/{name} and /teams/{name}.
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    if "/" in value:
        raise ValueError("must not contain '/' (names are parts of the API's paths)")
    return value


def _http_url(value: str) -> str:
    if not value.lower().startswith(("http://", "https://")) or len(value) < 9:
        raise ValueError("must be an http:// or https:// URL")
    return value


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable_text)]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable_text), AfterValidator(_entry_name)]
Url = Annotated[str, Field(max_length=2000), AfterValidator(storable_text), AfterValidator(_http_url)]
Tag = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(storable_text)]
Id = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(storable_text)]


class _Strict(BaseModel):
    # Unknown keys are refused: a misspelt ``depend_on`` must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunbookSpec(_Strict):
    title: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(storable_text)]
    url: Url
    tags: list[Tag] = Field(default_factory=list, max_length=100)


class PagerDutySpec(_Strict):
    service_id: Id | None = None
    escalation_policy_id: Id | None = None
    schedule_id: Id | None = None

    def refs(self) -> PagerDutyRefs:
        return PagerDutyRefs(self.service_id, self.escalation_policy_id, self.schedule_id)


def _document(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_defaults=True)


class ServiceFields(_Strict):
    """A service entry's fields, as a file, the API and the store write them (its name
    is given apart: the file's ``service``, the API's path)."""

    kind: ComponentKind = ComponentKind.service
    team: Name | None = None
    owners: list[Text] = Field(default_factory=list, max_length=_MAX_ITEMS)
    depends_on: list[Name] = Field(default_factory=list, max_length=_MAX_ITEMS)
    runbooks: list[RunbookSpec] = Field(default_factory=list, max_length=_MAX_ITEMS)
    aliases: list[Name] = Field(default_factory=list, max_length=_MAX_ITEMS)
    pagerduty: PagerDutySpec | None = None

    def entry(self, name: str) -> ServiceEntry:
        return ServiceEntry(
            name=name, kind=self.kind, team=self.team, owners=tuple(self.owners), depends_on=tuple(self.depends_on),
            runbooks=tuple(Runbook(r.title, r.url, tuple(r.tags)) for r in self.runbooks),
            aliases=tuple(self.aliases), pagerduty=self.pagerduty.refs() if self.pagerduty else None)

    @classmethod
    def of(cls, entry: ServiceEntry) -> "ServiceFields":
        pd = entry.pagerduty
        return cls(kind=entry.kind, team=entry.team, owners=list(entry.owners), depends_on=list(entry.depends_on),
                   runbooks=[RunbookSpec(title=r.title, url=r.url, tags=list(r.tags)) for r in entry.runbooks],
                   aliases=list(entry.aliases),
                   pagerduty=PagerDutySpec(service_id=pd.service_id, escalation_policy_id=pd.escalation_policy_id,
                                           schedule_id=pd.schedule_id) if pd else None)

    def document(self) -> dict[str, Any]:
        """JSON-ready, defaults left out: two entries are the same when these are equal."""
        return _document(self)


class TeamFields(_Strict):
    members: list[Text] = Field(default_factory=list, max_length=_MAX_ITEMS)
    channels: list[Text] = Field(default_factory=list, max_length=100)
    slack: Text | None = Field(None, description="a Slack channel: another way to write one of channels")
    rotation: Annotated[str, Field(max_length=2000), AfterValidator(storable_text)] | None = None
    pagerduty: PagerDutySpec | None = None

    @model_validator(mode="after")
    def _slack_is_a_channel(self) -> "TeamFields":
        if self.slack is None:
            return self
        channels = self.channels if self.slack in self.channels else [self.slack, *self.channels]
        return self.model_copy(update={"channels": channels, "slack": None})

    def entry(self, name: str) -> TeamEntry:
        return TeamEntry(name=name, members=tuple(self.members), channels=tuple(self.channels),
                         rotation=self.rotation, pagerduty=self.pagerduty.refs() if self.pagerduty else None)

    @classmethod
    def of(cls, entry: TeamEntry) -> "TeamFields":
        pd = entry.pagerduty
        return cls(members=list(entry.members), channels=list(entry.channels), rotation=entry.rotation,
                   pagerduty=PagerDutySpec(service_id=pd.service_id, escalation_policy_id=pd.escalation_policy_id,
                                           schedule_id=pd.schedule_id) if pd else None)

    def document(self) -> dict[str, Any]:
        return _document(self)


def _not_reserved(value: str) -> str:
    if value in RESERVED_NAMES:
        raise ValueError(f"{value!r} is reserved (GET /services/{value} serves the service graph)")
    return value


class _ServiceItem(ServiceFields):
    service: Annotated[Name, AfterValidator(_not_reserved)]


class _TeamItem(TeamFields):
    team: Name


class _CatalogFile(_Strict):
    services: list[_ServiceItem] = Field(default_factory=list)
    teams: list[_TeamItem] = Field(default_factory=list)


# --------------------------------------------------------------------------- parsing

Path = tuple[str | int, ...]


def _path_text(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _lines(node: yaml.Node, path: Path, out: dict[Path, int]) -> None:
    """Where each value of the document starts (1-based); a mapping's value at its key."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                child = (*path, key.value)
                out[child] = key.start_mark.line + 1
                _lines(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def _line_of(path: Path, lines: Mapping[Path, int]) -> int | None:
    """The line of ``path``, or of the nearest enclosing value the document has (a missing
    field is reported at its entry)."""
    for end in range(len(path), -1, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            return line
    return None


def _parse(text: str) -> Catalog:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise CatalogError(f"not valid YAML: {exc.problem or exc}", line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise CatalogError("expected a mapping with 'services' and 'teams'",
                           line=node.start_mark.line + 1 if node is not None else None)
    lines: dict[Path, int] = {}
    if node is not None:
        _lines(node, (), lines)
    try:
        parsed = _CatalogFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = tuple(first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = first["msg"].removeprefix("Value error, ")
        raise CatalogError(f"{msg}{more}", _path_text(path) or None, _line_of(path, lines)) from None

    def fail(path: Path, reason: str) -> CatalogError:
        return CatalogError(reason, _path_text(path), _line_of(path, lines))

    teams: dict[str, TeamEntry] = {}
    for i, t in enumerate(parsed.teams):
        if t.team in teams:
            raise fail(("teams", i, "team"), f"team {t.team!r} is listed twice")
        teams[t.team] = t.entry(t.team)
    services: dict[str, ServiceEntry] = {}
    for i, s in enumerate(parsed.services):
        if s.service in services:
            raise fail(("services", i, "service"), f"service {s.service!r} is listed twice")
        if s.team is not None and s.team not in teams:
            known = ", ".join(sorted(teams)) or "none"
            raise fail(("services", i, "team"), f"team {s.team!r} is not among the teams (known: {known})")
        services[s.service] = s.entry(s.service)
    named = {name: name for name in services}   # a name or an alias -> the entry it names
    for i, s in enumerate(parsed.services):
        for j, alias in enumerate(s.aliases):
            other = named.setdefault(alias, s.service)
            if other != s.service:
                raise fail(("services", i, "aliases", j), f"{alias!r} already names service {other!r}")
    return Catalog(services, teams)
