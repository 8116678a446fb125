"""The service catalog in the store, versioned as the parameters are: every change to an
entry (a service or a team) is a new version with who and why; a deletion is a version
too, so the history reads as what happened.

``revision`` numbers every change of the whole catalog in order, so a process can keep
its copy of the catalog and reload it only when the newest revision moved
(``CatalogStore.revision``). ``version`` numbers the versions of one entry, 1, 2, ….

``TRIAGE_CATALOG_FILE`` is applied at start-up (``CatalogStore.load``) as changes with
``origin = "file"``: an entry the file says differently from what it said when last
loaded gets a new version; an entry the file says as before is left as it is, so an
edit made through the API stays until the file changes that entry. Entries the file
does not name are left alone (delete them through the API).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

import sqlalchemy as sa

from triage.models.catalog import Catalog, ServiceEntry, ServiceFields, TeamEntry, TeamFields
from triage.store.schema import JSONType, UTCDateTime, metadata

catalog_versions = sa.Table(
    "catalog_versions", metadata,
    sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),   # the whole catalog's, in order
    sa.Column("entry_kind", sa.String(16), nullable=False),    # service | team
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),          # the entry's own, 1, 2, …
    sa.Column("document", JSONType),                           # the entry's fields; NULL: deleted
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),        # api | file
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("entry_kind", "name", "version", name="uq_catalog_versions_entry"),
)
_c = catalog_versions.c


class EntryKind(str, Enum):
    service = "service"
    team = "team"


class Origin(str, Enum):
    api = "api"
    file = "file"


Entry = ServiceEntry | TeamEntry


@dataclass(frozen=True)
class EntryVersion:
    """One version of a catalog entry; ``entry`` is None for a deletion."""

    kind: EntryKind
    name: str
    version: int
    revision: int
    entry: Entry | None
    author: str
    reason: str
    origin: Origin
    created_at: datetime

    @property
    def deleted(self) -> bool:
        return self.entry is None


class UnknownEntry(LookupError):
    pass


class CatalogConflict(ValueError):
    """The change would leave the catalog inconsistent (a service of a team that does not
    exist, a team still owning services). ``field`` names what is at fault."""

    def __init__(self, reason: str, field: str) -> None:
        super().__init__(reason)
        self.reason, self.field = reason, field


def _document(entry: Entry) -> dict[str, Any]:
    return (ServiceFields.of(entry) if isinstance(entry, ServiceEntry) else TeamFields.of(entry)).document()


def _entry(kind: EntryKind, name: str, document: dict[str, Any] | None) -> Entry | None:
    if document is None:
        return None
    if kind is EntryKind.service:
        return ServiceFields.model_validate(document).entry(name)
    return TeamFields.model_validate(document).entry(name)


def _kind_of(entry: Entry) -> EntryKind:
    return EntryKind.service if isinstance(entry, ServiceEntry) else EntryKind.team


def _version(row: Any) -> EntryVersion:
    kind = EntryKind(row.entry_kind)
    return EntryVersion(kind=kind, name=row.name, version=row.version, revision=row.revision,
                        entry=_entry(kind, row.name, row.document), author=row.author, reason=row.reason,
                        origin=Origin(row.origin), created_at=row.created_at)


def _newest_per_entry(origin: Origin | None = None) -> sa.Subquery:
    """The newest revision of each entry (of one origin, if given)."""
    query = sa.select(sa.func.max(_c.revision).label("revision")).group_by(_c.entry_kind, _c.name)
    if origin is not None:
        query = query.where(_c.origin == origin.value)
    return query.subquery()


class CatalogStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- reading -----------------------------------------------------------------------

    def revision(self) -> int:
        """The newest revision of the whole catalog (0: never written). Cheap: one index look-up."""
        with self.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.max(_c.revision))) or 0)

    def current(self, kind: EntryKind | None = None) -> list[EntryVersion]:
        """The entries in force (deleted ones left out), by kind and name."""
        newest = _newest_per_entry()
        query = (sa.select(catalog_versions).join(newest, _c.revision == newest.c.revision)
                 .where(_c.document.is_not(None)).order_by(_c.entry_kind, _c.name))
        if kind is not None:
            query = query.where(_c.entry_kind == kind.value)
        with self.engine.connect() as conn:
            return [_version(r) for r in conn.execute(query)]

    def catalog(self) -> Catalog:
        """The catalog in force, as the rankings take it."""
        entries = [v.entry for v in self.current()]
        return Catalog.of([e for e in entries if isinstance(e, ServiceEntry)],
                          [e for e in entries if isinstance(e, TeamEntry)])

    def get(self, kind: EntryKind, name: str) -> EntryVersion | None:
        """The newest version of an entry, None if it never existed (a deleted one is returned, deleted)."""
        with self.engine.connect() as conn:
            return self._newest(conn, kind, name)

    def history(self, kind: EntryKind, name: str) -> list[EntryVersion]:
        """Every version of an entry, newest first; empty if it never existed."""
        query = (sa.select(catalog_versions).where(_c.entry_kind == kind.value, _c.name == name)
                 .order_by(_c.version.desc()))
        with self.engine.connect() as conn:
            return [_version(r) for r in conn.execute(query)]

    # -- writing -----------------------------------------------------------------------

    def put(self, entry: Entry, *, author: str, reason: str, origin: Origin = Origin.api) -> tuple[EntryVersion, bool]:
        """Save ``entry`` as its new version; (the version, whether one was written): an
        entry equal to the one in force writes nothing, so a retried PUT is harmless.
        ``CatalogConflict`` for a service whose team the catalog does not hold."""
        with self._writing() as conn:
            self._check(conn, entry)
            return self._put(conn, entry, author=author, reason=reason, origin=origin)

    def delete(self, kind: EntryKind, name: str, *, author: str, reason: str) -> EntryVersion:
        """Record the entry's deletion as its new version. ``UnknownEntry`` if it is not in
        force; ``CatalogConflict`` for a team that still owns services."""
        with self._writing() as conn:
            current = self._newest(conn, kind, name)
            if current is None or current.deleted:
                raise UnknownEntry(f"no {kind.value} {name!r}")
            if kind is EntryKind.team:
                owned = sorted(s.name for s in self._services(conn) if s.team == name)
                if owned:
                    raise CatalogConflict(f"team {name!r} still owns {', '.join(owned)}: give them another team "
                                          "first", "name")
            return self._write(conn, kind, name, None, author=author, reason=reason, origin=Origin.api)

    def load(self, catalog: Catalog, *, source: str) -> list[EntryVersion]:
        """Apply a catalog file (see the module's doc): the versions written, teams first."""
        reason = f"loaded from {source}"
        written: list[EntryVersion] = []
        with self._writing() as conn:
            newest = _newest_per_entry(Origin.file)
            last = {(EntryKind(r.entry_kind), r.name): r.document
                    for r in conn.execute(sa.select(_c.entry_kind, _c.name, _c.document)
                                          .join(newest, _c.revision == newest.c.revision))}
            entries: list[Entry] = [*catalog.teams.values(), *catalog.services.values()]
            for entry in entries:
                kind = _kind_of(entry)
                if last.get((kind, entry.name)) == _document(entry):
                    continue   # as the file said before: an API edit since then stays
                version, changed = self._put(conn, entry, author="catalog file", reason=reason, origin=Origin.file)
                if changed:
                    written.append(version)
                else:
                    # In force already (written through the API): record that the file says it too.
                    written.append(self._write(conn, kind, entry.name, _document(entry), author="catalog file",
                                               reason=reason, origin=Origin.file))
        return written

    # -- inside a write transaction ----------------------------------------------------

    def _writing(self) -> Any:
        return _WriteTransaction(self.engine)

    def _newest(self, conn: sa.Connection, kind: EntryKind, name: str) -> EntryVersion | None:
        row = conn.execute(sa.select(catalog_versions).where(_c.entry_kind == kind.value, _c.name == name)
                           .order_by(_c.version.desc()).limit(1)).first()
        return _version(row) if row is not None else None

    def _services(self, conn: sa.Connection) -> Iterable[ServiceEntry]:
        newest = _newest_per_entry()
        rows = conn.execute(sa.select(catalog_versions).join(newest, _c.revision == newest.c.revision)
                            .where(_c.entry_kind == EntryKind.service.value, _c.document.is_not(None)))
        for row in rows:
            entry = _version(row).entry
            if isinstance(entry, ServiceEntry):
                yield entry

    def _check(self, conn: sa.Connection, entry: Entry) -> None:
        if isinstance(entry, ServiceEntry) and entry.team is not None:
            team = self._newest(conn, EntryKind.team, entry.team)
            if team is None or team.deleted:
                raise CatalogConflict(f"team {entry.team!r} is not in the catalog: add it under /teams first",
                                      "team")

    def _put(self, conn: sa.Connection, entry: Entry, *, author: str, reason: str,
             origin: Origin) -> tuple[EntryVersion, bool]:
        kind, document = _kind_of(entry), _document(entry)
        current = self._newest(conn, kind, entry.name)
        if current is not None and current.entry is not None and _document(current.entry) == document:
            return current, False
        return self._write(conn, kind, entry.name, document, author=author, reason=reason, origin=origin), True

    def _write(self, conn: sa.Connection, kind: EntryKind, name: str, document: dict[str, Any] | None, *,
               author: str, reason: str, origin: Origin) -> EntryVersion:
        revision = int(conn.scalar(sa.select(sa.func.max(_c.revision))) or 0) + 1
        version = int(conn.scalar(sa.select(sa.func.max(_c.version))
                                  .where(_c.entry_kind == kind.value, _c.name == name)) or 0) + 1
        now = datetime.now(timezone.utc)
        conn.execute(sa.insert(catalog_versions).values(
            # SQL NULL for a deletion (the JSON type would store None as JSON's null, which
            # ``IS NULL`` does not find).
            revision=revision, entry_kind=kind.value, name=name, version=version,
            document=document if document is not None else sa.null(), author=author,
            reason=reason, origin=origin.value, created_at=now))
        return EntryVersion(kind, name, version, revision, _entry(kind, name, document), author, reason, origin, now)


class _WriteTransaction:
    """A transaction that holds the catalog's write lock from its first statement, so that
    two writers (two SREs saving at once, replicas loading the file together) number
    their versions one after the other instead of failing on the same number."""

    def __init__(self, engine: sa.Engine) -> None:
        self._begin = engine.begin()

    def __enter__(self) -> sa.Connection:
        conn = self._begin.__enter__()
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("LOCK TABLE catalog_versions IN EXCLUSIVE MODE"))
        else:
            # SQLite's transaction starts deferred: a write statement (matching no row)
            # takes the database's write lock now, before the reads the numbering makes.
            conn.execute(sa.update(catalog_versions).where(sa.false()).values(revision=_c.revision))
        return conn

    def __exit__(self, *exc: Any) -> Any:
        return self._begin.__exit__(*exc)
