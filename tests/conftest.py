"""Shared fixtures: a real Tansu broker, a real PostgreSQL database, stores, events."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from triage.broker import EmbeddedBroker
from triage.domain.event import Event
from triage.models.embedder import Embedder, EmbedderKind, HashingEmbedder, MiniLMEmbedder
from triage.store import SqlStore

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PG_ADMIN_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 3, 11, 14, 0, tzinfo=timezone.utc)

# The tests' one embedder, shared as a process's is: MiniLM (what the figures the tests
# assert were measured with; its model loads on first use), or the hashing embedder where
# TRIAGE_EMBEDDER=hashing says so, as it does for triage itself. Processes the tests
# start build their own from the same variable.
EMBEDDER_KIND: EmbedderKind = "hashing" if os.environ.get("TRIAGE_EMBEDDER") == "hashing" else "minilm"
EMBEDDER: Embedder = HashingEmbedder() if EMBEDDER_KIND == "hashing" else MiniLMEmbedder()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # "No tests ran" must never pass for green.
    if session.testscollected == 0 and exitstatus in (0, 5):
        session.exitstatus = 1


def skip_or_fail(reason: str) -> None:
    """Outside CI a missing service skips with its reason; in CI it is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must run in CI)")
    pytest.skip(reason)


def make_event(seconds: float = 0, **fields: Any) -> Event:
    """A valid event at T0 + seconds; any field can be overridden."""
    data: dict[str, Any] = {
        "id": fields.pop("id", f"e-{uuid.uuid4().hex[:12]}"),
        "kind": "alert", "source": "alertmanager", "occurred_at": T0 + timedelta(seconds=seconds),
        "service": "checkout", "severity": "critical", "status": "firing",
        "title": "HighErrorRate", "labels": {"alertname": "HighErrorRate", "service": "checkout"},
    }
    data.update(fields)
    return Event.model_validate(data)


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throw-away database on the PostgreSQL server, for this test session."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        skip_or_fail(f"no PostgreSQL at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}")
    name = f"triage_test_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def pg_url(pg_database: str) -> str:
    reset_postgres(pg_database)
    return pg_database


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'triage.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = SqlStore.from_url(store_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore.from_url(f"sqlite:///{tmp_path / 'triage.db'}")
    yield s
    s.close()
