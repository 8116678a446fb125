"""Versioned correlation parameters: every change is a new version with who and why.

The newest version is the one in force. A rollback is a change too (a new version with an
old version's values), so the history reads as what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from triage.models.parameters import CorrelationParameters
from triage.store.driver import NEWEST_PARAMETERS
from triage.store.schema import JSONType, UTCDateTime, metadata

parameter_versions = sa.Table(
    "parameter_versions", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("values", JSONType, nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)


@dataclass(frozen=True)
class ParameterVersion:
    version: int
    parameters: CorrelationParameters
    author: str
    reason: str
    created_at: datetime | None


DEFAULTS = ParameterVersion(0, CorrelationParameters(), "triage", "built-in defaults", None)


class UnknownVersion(LookupError):
    pass


class ParameterStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._latest = DEFAULTS   # versions never change once written: cached by number

    def current(self) -> ParameterVersion:
        """The newest version."""
        with self.engine.connect() as conn:
            return self.numbered(conn.exec_driver_sql(NEWEST_PARAMETERS).scalar() or 0)

    def numbered(self, number: int) -> ParameterVersion:
        """Version ``number``, known to be the newest. Every batch asks (its transaction
        reads the number with its first statements, ``BatchReads.opening``), so the values
        are parsed only when the number moved."""
        latest = self._latest
        if latest.version != number:
            latest = self._latest = self.get(number)
        return latest

    def get(self, version: int) -> ParameterVersion:
        if version == 0:
            return DEFAULTS
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(parameter_versions).where(parameter_versions.c.version == version)).first()
        if row is None:
            raise UnknownVersion(f"no parameters version {version}")
        return _version(row)

    def versions(self) -> list[ParameterVersion]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(parameter_versions).order_by(parameter_versions.c.version.desc()))
            return [_version(r) for r in rows] + [DEFAULTS]

    def put(self, parameters: CorrelationParameters, *, author: str, reason: str) -> ParameterVersion:
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # two SREs saving at once get two versions, not one
                conn.execute(sa.text("LOCK TABLE parameter_versions IN EXCLUSIVE MODE"))
            latest = conn.scalar(sa.select(sa.func.max(parameter_versions.c.version))) or 0
            version = latest + 1
            conn.execute(sa.insert(parameter_versions).values(
                version=version, values=parameters.model_dump(mode="json"), author=author, reason=reason,
                created_at=now))
        return ParameterVersion(version, parameters, author, reason, now)

    def rollback(self, version: int, *, author: str, reason: str | None = None) -> ParameterVersion:
        old = self.get(version)
        return self.put(old.parameters, author=author, reason=reason or f"rollback to version {version}")


def _version(row: Any) -> ParameterVersion:
    # A parameter a later release removed is dropped; one it added takes its default.
    known = CorrelationParameters.model_fields
    values = {k: v for k, v in row._mapping["values"].items() if k in known}
    return ParameterVersion(version=row.version, parameters=CorrelationParameters.model_validate(values),
                            author=row.author, reason=row.reason, created_at=row.created_at)
