"""The pipeline's cache of its scopes: used only while the scope's revision moved by exactly
the batch's own bump, taken out by a batch and put back only by its commit."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import T0
from triage.correlation import CorrelationState, Correlator, IncidentState
from triage.correlation.state import ScopeModels
from triage.domain.event import Severity
from triage.models.embedder import HashingEmbedder
from triage.services.scope_cache import ScopeCache


def incident(incident_id: str, scope: str, accepting_for_s: float) -> IncidentState:
    return IncidentState(id=incident_id, scope=scope, title="t", opened_at=T0, last_event_at=T0,
                         severity=Severity.critical, accepting_until=T0 + timedelta(seconds=accepting_for_s))


def committed() -> tuple[ScopeCache, Correlator, ScopeModels]:
    """A cache after a batch of scope ``global`` at T0 committed with revision 3."""
    state = CorrelationState()
    for i in (incident("b", "global", 600), incident("a", "global", 600), incident("gone", "global", -60)):
        state.add_incident(i)
    models = state.models_for("global")
    correlator = Correlator(state=state, embedder=HashingEmbedder())
    cache = ScopeCache()
    cache.keep({"global": 3}, T0, state, correlator)
    return cache, correlator, models


def test_a_scope_nobody_else_wrote_is_used_as_kept_with_its_correlator() -> None:
    cache, correlator, models = committed()
    taken = cache.take({"global": 4}, T0 + timedelta(seconds=10), {"global"})
    assert [i.id for i in taken.kept.incidents["global"]] == ["a", "b"]   # the store's order; "gone" is over
    assert taken.kept.models["global"] is models and taken.correlator is correlator
    assert cache.correlator is None and cache.take({"global": 5}, T0, {"global"}).kept.models == {}   # taken out


def test_a_scope_someone_else_wrote_is_read_again_its_models_if_unchanged() -> None:
    cache, _, models = committed()
    taken = cache.take({"global": 5}, T0 + timedelta(seconds=10), {"global"})   # another bump in between
    assert taken.kept.incidents == {} and taken.kept.models == {} and taken.correlator is None
    assert taken.kept.models_if_unchanged["global"] is models


def test_an_event_older_than_the_kept_slice_reads_the_incidents_again() -> None:
    cache, _, models = committed()
    taken = cache.take({"global": 4}, T0 - timedelta(seconds=1), {"global"})
    assert taken.kept.incidents == {} and taken.kept.models["global"] is models and taken.correlator is None


def test_the_correlator_is_kept_only_when_every_scope_it_decides_is_current() -> None:
    cache, _, _ = committed()
    taken = cache.take({"global": 4, "domain:x": 1}, T0, {"global", "domain:x"})   # domain:x never kept
    assert taken.kept.incidents.keys() == {"global"} and taken.correlator is None
