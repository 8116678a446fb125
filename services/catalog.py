"""The service catalog for a process: the file applied at start-up, and a copy kept
current for the parts that read it on every incident."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from triage.models.catalog import Catalog, CatalogError
from triage.store.catalog import CatalogStore, EntryVersion

log = logging.getLogger(__name__)


class CatalogFileError(ValueError):
    """``TRIAGE_CATALOG_FILE`` cannot be used: the process refuses to start, saying where."""


def read_catalog_file(path: Path | str) -> Catalog:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogFileError(f"TRIAGE_CATALOG_FILE {path}: cannot be read: {exc}") from None
    try:
        return Catalog.from_yaml(text)
    except CatalogError as exc:
        raise CatalogFileError(f"TRIAGE_CATALOG_FILE {path}: {exc}") from None


def load_catalog_file(engine: sa.Engine, path: Path | str) -> list[EntryVersion]:
    """Check the file, then apply it to the store (``CatalogStore.load``): the versions
    it wrote. ``CatalogFileError`` names the line and field of a malformed file, and
    nothing is written."""
    catalog = read_catalog_file(path)
    written = CatalogStore(engine).load(catalog, source=f"TRIAGE_CATALOG_FILE {path}")
    log.info("catalog %s: %d services, %d teams; %d entries changed", path, len(catalog.services),
             len(catalog.teams), len(written))
    return written


class CatalogCache:
    """The catalog in force, re-read only when its revision moved, and that asked at most
    every ``interval_s`` (one index look-up), so an edit through the API reaches every
    process within that."""

    def __init__(self, engine: sa.Engine, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = CatalogStore(engine)
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._revision = -1
        self._catalog = Catalog()
        self._checked_at: float | None = None

    def current(self) -> Catalog:
        with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self.interval_s:
                revision = self.store.revision()
                if revision != self._revision:
                    self._catalog, self._revision = self.store.catalog(), revision
                self._checked_at = now
            return self._catalog

    def team_of(self, service: str) -> str | None:
        """The name of the team owning ``service`` in the catalog in force, if any
        (``/stats/oncall?by=team``)."""
        team = self.current().team_of(service)
        return team.name if team is not None else None
