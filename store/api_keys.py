"""API keys: stored as SHA-256 hashes of high-entropy tokens, never in clear."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

import sqlalchemy as sa

from triage.store.schema import JSONType, UTCDateTime, metadata


class Scope(str, Enum):
    read = "read"      # incidents, events, stats
    ingest = "ingest"  # webhooks
    admin = "admin"    # settings, models, keys; implies the others


api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scopes", JSONType, nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime()),
)

TOKEN_PREFIX = "trg_"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        return self.revoked_at is None and (scope in self.scopes or Scope.admin in self.scopes)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, name: str, scopes: set[Scope], *, now: datetime | None = None) -> tuple[ApiKey, str]:
        """Returns the key and its token; the token is shown once and not kept."""
        if not scopes:
            raise ValueError("an API key needs at least one scope")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id="key_" + secrets.token_hex(6), name=name, scopes=frozenset(scopes),
                     created_at=now or datetime.now(timezone.utc))
        with self.engine.begin() as conn:
            conn.execute(sa.insert(api_keys).values(
                id=key.id, name=name, scopes=sorted(s.value for s in scopes),
                token_sha256=_digest(token), created_at=key.created_at))
        return key, token

    def authenticate(self, token: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.token_sha256 == _digest(token))).first()
        return _key(row) if row is not None and row.revoked_at is None else None

    def any_created(self) -> bool:
        """Has any key ever been created, revoked ones included? Rows are never deleted,
        so once this is true it stays true: what keeps the API closed for good."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(api_keys.c.id).limit(1)).first() is not None

    def any_active(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None)).limit(1)).first() \
                is not None

    def list(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            return [_key(r) for r in conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at))]

    def revoke(self, key_id: str, *, now: datetime | None = None) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                                  .values(revoked_at=now or datetime.now(timezone.utc)))
        return bool(result.rowcount)


def _key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(id=row.id, name=row.name, scopes=frozenset(Scope(s) for s in row.scopes),
                  created_at=row.created_at, revoked_at=row.revoked_at)
