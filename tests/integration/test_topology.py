"""Declared service dependencies (TRIAGE_TOPOLOGY_FILE) relate services before any trace does."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from tests.conftest import EMBEDDER, make_event
from triage.models.topology import ServiceGraph
from triage.services.pipeline import Pipeline
from triage.settings import Settings
from triage.store import SqlStore


def _incidents(store: SqlStore, pipeline: Pipeline) -> set[str]:
    pipeline([make_event(0, id="c1", fingerprint="c1", service="checkout", title="Checkout errors above 5%"),
              make_event(10, id="p1", fingerprint="p1", service="payments", title="Payments errors above 5%",
                         labels={"alertname": "PaymentsErrors"})])
    found = {e.membership.incident_id for e in map(store.get_event, ("c1", "p1")) if e and e.membership}
    return found


def test_a_declared_dependency_groups_alerts_of_related_services(sqlite_store: SqlStore, tmp_path: Path) -> None:
    catalog = tmp_path / "services.yaml"
    catalog.write_text("services:\n  - service: checkout\n    depends_on: [payments]\n")
    settings = Settings(topology_file=catalog)
    assert settings.topology_file is not None
    assert len(_incidents(sqlite_store, Pipeline(sqlite_store, EMBEDDER, topology=ServiceGraph.from_topology(
        settings.topology_file)))) == 1


def test_without_it_two_services_nothing_relates_stay_apart(sqlite_store: SqlStore) -> None:
    assert len(_incidents(sqlite_store, Pipeline(sqlite_store, EMBEDDER))) == 2


def test_a_missing_topology_file_is_a_settings_error() -> None:
    with pytest.raises(pydantic.ValidationError, match="topology_file"):
        Settings(topology_file=Path("/no/such/services.yaml"))
