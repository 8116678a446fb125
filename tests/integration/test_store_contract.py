"""One contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import triage.services.pipeline as pipeline_module
from tests.conftest import EMBEDDER, T0, make_event
from triage.correlation.evidence import Joined, Rule
from triage.domain.event import ServiceEdge
from triage.services.pipeline import Pipeline
from triage.store import IncidentQuery, SqlStore
from triage.store.migrate import upgrade


def test_batch_is_stored_with_memberships_and_incidents(store: SqlStore) -> None:
    events = [make_event(0, id="a1", fingerprint="fa"), make_event(30, id="a2", fingerprint="fb"),
              make_event(60, id="a3", fingerprint="fa"),
              make_event(5, id="p1", service="payments", fingerprint="fp")]
    result = Pipeline(store, EMBEDDER)(events)
    assert (result.stored, result.opened, result.attached, result.suppressed) == (4, 2, 1, 1)
    assert store.count_events() == 4
    page = store.list_incidents(IncidentQuery())
    assert page.total == 2
    checkout = next(i for i in page.items if i.services == ["checkout"])
    assert (checkout.event_count, checkout.alert_count, checkout.suppressed_count) == (3, 2, 1)
    assert checkout.firing_alerts == 2 and checkout.status == "open"
    stored = store.get_event("a2")
    assert stored is not None and stored.membership is not None
    assert stored.membership.rule is Rule.correlated and isinstance(stored.membership.evidence, Joined)
    assert stored.membership.evidence.match.gap_s == 30 and stored.membership.evidence.as_json()["gap_s"] == 30
    assert stored.event.occurred_at == T0 + timedelta(seconds=30)  # aware UTC round trip
    assert [e.event.id for e in store.incident_events(checkout.id)] == ["a1", "a2", "a3"]


def test_events_at_every_length_the_model_allows_are_stored(store: SqlStore) -> None:
    """The event model's bounds and the store's columns agree: an event that validates is
    one the store can hold (else PostgreSQL refuses its batch on every retry)."""
    domain = {"triage.domain": "d" * 100}
    events = [
        make_event(0, id="i" * 200, source="s" * 100, fingerprint="f" * 300, service="c" * 200, labels=domain),
        make_event(1, kind="log", source="otel", service=None, host="h" * 253, title="disk full", labels=domain),
        make_event(2, kind="span", source="otel", service="c" * 200, parent_service="p" * 200,
                   title="GetCart", body="failed", labels=domain),
    ]
    Pipeline(store, EMBEDDER)(events)
    assert store.count_events() == 3
    assert all(store.get_event(e.id).membership is not None for e in events)  # type: ignore[union-attr]
    again = make_event(60, id="again", source="s" * 100, fingerprint="f" * 300, service="c" * 200, labels=domain)
    assert Pipeline(store, EMBEDDER)([again]).suppressed == 1   # its (hashed) key found the first one's signal


def test_a_value_the_database_refuses_is_named_as_such_and_nothing_is_stored(store: SqlStore) -> None:
    """PostgreSQL's text cannot hold NUL (SQLite's can): the refusal comes out as
    ``RefusedEvents``, which the consumer answers by isolating the message, not by
    retrying the batch forever. A NUL in a log line's text is shown as U+FFFD instead.
    (Validation refuses a NUL in a fingerprint now; the store's answer stays the net
    under it, for values nobody foresaw.)"""
    from triage.domain.errors import RefusedEvents

    line = make_event(0, id="line", kind="log", source="otel", title="bad\x00byte", body="\x00")
    assert line.title == "bad\ufffdbyte" and line.body == "\ufffd"
    batch = [line, make_event(1, id="nul").model_copy(update={"fingerprint": "f\x00"})]
    if store.engine.dialect.name == "postgresql":
        with pytest.raises(RefusedEvents, match="NUL"):
            Pipeline(store, EMBEDDER)(batch)
        assert store.count_events() == 0
        Pipeline(store, EMBEDDER)(batch[:1])   # nothing of the refused batch lingers in the process
        assert store.count_events() == 1
    else:
        Pipeline(store, EMBEDDER)(batch)
        assert store.count_events() == 2


def test_redelivered_batch_changes_nothing(store: SqlStore) -> None:
    events = [make_event(0, id="a1", fingerprint="fa"), make_event(30, id="a2", fingerprint="fb")]
    Pipeline(store, EMBEDDER)(events)
    before = store.list_incidents(IncidentQuery()).items
    again = Pipeline(store, EMBEDDER)(events + [make_event(40, id="a3", fingerprint="fc")])
    assert again.stored == 1 and again.received == 3
    assert store.count_events() == 3
    after = store.list_incidents(IncidentQuery()).items
    assert [i.id for i in after] == [i.id for i in before]
    assert after[0].event_count == 3


def test_state_carries_across_batches(store: SqlStore) -> None:
    pipeline = Pipeline(store, EMBEDDER)
    first = pipeline([make_event(0, id="a1", fingerprint="fa")])
    second = pipeline([make_event(600, id="a2", fingerprint="fa")])  # still firing: a duplicate
    third = pipeline([make_event(700, id="a3", fingerprint="fa", status="resolved")])
    assert (first.opened, second.suppressed, third.attached) == (1, 1, 1)
    [incident] = store.list_incidents(IncidentQuery()).items
    assert incident.status == "resolved" and incident.resolved_at == T0 + timedelta(seconds=700)


def test_a_service_joining_later_is_linked_even_after_a_failed_batch(
        store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch writes only the service links its incidents did not have; a batch that
    failed after writing them (rolled back) must not count as having written them."""
    pipeline = Pipeline(store, EMBEDDER)
    pipeline([make_event(0, id="a1", fingerprint="fa")], [ServiceEdge("checkout", "payments", T0)])
    joining = [make_event(10, id="p1", service="payments", fingerprint="fp",
                          labels={"alertname": "HighErrorRate", "service": "payments"})]

    def outage(*_: object) -> None:
        raise RuntimeError("connection lost")

    failed = pipeline.cache.correlator   # the failed batch decides with it (its scope is as kept)
    monkeypatch.setattr(pipeline_module, "record_edges", outage)   # fails after the links are written
    with pytest.raises(RuntimeError):
        pipeline(joining)
    monkeypatch.undo()
    pipeline(joining)
    assert pipeline.cache.correlator is not failed   # its indexes held what the failed batch did
    [incident] = store.list_incidents(IncidentQuery(service="payments")).items
    assert incident.services == ["checkout", "payments"]
    assert store.list_incidents(IncidentQuery(service="checkout")).items == [incident]


def test_incident_filters_and_pagination(store: SqlStore) -> None:
    pipeline = Pipeline(store, EMBEDDER)
    pipeline([make_event(i * 1000, id=f"c{i}", fingerprint=f"c{i}") for i in range(5)]
             + [make_event(10, id="p1", service="payments", fingerprint="p1")])
    assert store.list_incidents(IncidentQuery(service="payments")).total == 1
    assert store.list_incidents(IncidentQuery(service="checkout")).total == 5
    page = store.list_incidents(IncidentQuery(limit=2, offset=0))
    assert page.total == 6 and len(page.items) == 2
    assert page.items[0].opened_at >= page.items[1].opened_at  # newest first
    late = store.list_incidents(IncidentQuery(since=T0 + timedelta(seconds=2500)))
    assert {i.opened_at for i in late.items} == {T0 + timedelta(seconds=3000), T0 + timedelta(seconds=4000)}
    assert store.list_incidents(IncidentQuery(status="resolved")).total == 0


def test_noise_stats_split_by_source_and_service(store: SqlStore) -> None:
    first = Pipeline(store, EMBEDDER)([
        make_event(0, id="a1", fingerprint="fa"), make_event(10, id="a2", fingerprint="fa"),
        make_event(20, id="a3", fingerprint="fb", source="grafana"),
        make_event(30, id="l1", kind="log", source="otel", service="payments", severity="error", title="boom"),
    ])
    assert (first.opened, first.incidents_opened, first.noise_groups_opened) == (2, 1, 1)
    stats = store.noise_stats()
    assert (stats.total.events, stats.total.suppressed, stats.total.incidents, stats.total.noise_groups) == (4, 1, 1, 1)
    assert stats.total.compression == 0.75   # the log's noise group pages nobody: not an incident
    assert stats.by_source["alertmanager"].suppressed == 1 and stats.by_source["otel"].noise_groups == 1
    assert stats.by_source["otel"].incidents == 0 and stats.by_service["checkout"].events == 3
    windowed = store.noise_stats(since=T0 + timedelta(seconds=15), until=T0 + timedelta(seconds=25))
    assert windowed.total.events == 1
    # An alert joins the log's group: it is an incident now, opened by the log.
    result = Pipeline(store, EMBEDDER)([make_event(40, id="a4", fingerprint="fc", service="payments", title="boom")])
    assert (result.opened, result.attached, result.incidents_opened, result.noise_groups_opened) == (0, 1, 1, 0)
    stats = store.noise_stats()
    assert (stats.total.incidents, stats.total.noise_groups) == (2, 0)
    assert (stats.by_source["otel"].incidents, stats.by_source["otel"].noise_groups) == (1, 0)


def test_unknown_ids_are_none(store: SqlStore) -> None:
    assert store.get_incident("nope") is None and store.get_event("nope") is None
    store.ping()


def _bundled_storm(limit: int) -> list:  # type: ignore[type-arg]
    import gzip
    import json
    from importlib.resources import files

    from triage.ingest.decode import event_from_dict

    lines = gzip.decompress((files("triage") / "data" / "sample_storm.jsonl.gz").read_bytes()).splitlines()
    return [event_from_dict(json.loads(line)) for line in lines[:limit]]


def test_decisions_do_not_depend_on_batching_or_on_which_process_decides(store: SqlStore, store_url: str) -> None:
    """The engine's learned state (templates, service graph, incident profiles, embeddings)
    goes through the store between batches; cutting the stream differently, or handing
    it to a fresh process half-way, must give the same incidents as one run in memory."""
    from triage.correlation import Correlator

    events = _bundled_storm(900)
    expected = {d.event_id: d.incident_id for d in Correlator(embedder=EMBEDDER).process_batch(events)}
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.id))
    pipeline = Pipeline(store, EMBEDDER)
    correlators = set()
    for i in range(0, 450, 50):                     # this process, batches of 50
        pipeline(ordered[i:i + 50])
        correlators.add(id(pipeline.cache.correlator))
    assert len(correlators) == 1                     # its correlator kept its indexes throughout
    for i in range(450, len(ordered), 150):         # "another process": a new store object per batch
        other = SqlStore.from_url(store_url, migrate=False)
        Pipeline(other, EMBEDDER)(ordered[i:i + 150])
        other.close()
    assert store.all_memberships() == expected
    with store.engine.connect() as conn:
        import sqlalchemy as sa

        from triage.store import schema as t
        [models] = conn.execute(sa.select(t.correlation_models)).all()
        assert models.scope == "global" and models.version >= 1 and models.graph["edges"]
        assert conn.scalar(sa.select(sa.func.count()).select_from(t.template_embeddings)) > 0


def test_two_processes_taking_turns_see_each_others_incidents(store: SqlStore, store_url: str) -> None:
    """Each store keeps the incidents its last batch committed and reuses them only while
    no other process has written the scope since: two long-lived stores deciding alternate
    batches must agree with one run in memory, counts included."""
    from triage.correlation import Correlator

    events = _bundled_storm(600)
    expected = {d.event_id: d.incident_id for d in Correlator(embedder=EMBEDDER).process_batch(events)}
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.id))
    other = SqlStore.from_url(store_url, migrate=False)
    pipelines = [Pipeline(store, EMBEDDER), Pipeline(other, EMBEDDER)]   # long-lived: each must see the other's writes
    correlators = []
    try:
        for n, i in enumerate(range(0, len(ordered), 40)):
            pipelines[n % 2](ordered[i:i + 40])
            correlators.append(pipelines[n % 2].cache.correlator)
        # The other wrote the scope in between, so no correlator's indexes were kept.
        assert len({id(c) for c in correlators}) == len(correlators)
    finally:
        other.close()
    assert store.all_memberships() == expected
    counts: dict[str, int] = {}
    for incident_id in expected.values():
        counts[incident_id] = counts.get(incident_id, 0) + 1
    page = store.list_incidents(IncidentQuery(limit=1000))
    assert {i.id: i.event_count for i in page.items} == counts


def test_noise_groups_are_listed_apart_from_incidents(store: SqlStore) -> None:
    Pipeline(store, EMBEDDER)([make_event(0, id="a1", fingerprint="fa"),
                     make_event(5, id="l1", kind="log", source="otel", service="payments", severity="error",
                                title="stray error")])
    assert [i.kind for i in store.list_incidents(IncidentQuery(kind="noise")).items] == ["noise"]
    assert store.list_incidents(IncidentQuery(kind="incident")).total == 1


def test_service_edges_fold_across_batches(store: SqlStore) -> None:
    from triage.store.graph import load_edges, record_edges

    with store.engine.begin() as conn:
        record_edges(conn, [("frontend", "cart", T0 + timedelta(seconds=5)), ("frontend", "cart", T0),
                            ("cart", "cart", T0), ("cart", "redis", T0)])
    with store.engine.begin() as conn:
        record_edges(conn, [("frontend", "cart", T0 + timedelta(seconds=60)), ("checkout", "payment", T0)])
    with store.engine.begin() as conn:   # a late span, older than anything seen
        record_edges(conn, [("frontend", "cart", T0 - timedelta(seconds=10))])
    edges = {(e.caller, e.callee): e for e in load_edges(store.engine)}
    assert sorted(edges) == [("cart", "redis"), ("checkout", "payment"), ("frontend", "cart")]
    fc = edges["frontend", "cart"]
    assert (fc.count, fc.first_seen, fc.last_seen) == (4, T0 - timedelta(seconds=10), T0 + timedelta(seconds=60))


def test_centroids_stored_as_json_are_carried_over_as_float32(store_url: str) -> None:
    """Migration 0008 moves incidents.centroid (a JSON array) to float32 bytes."""
    store = SqlStore.from_url(store_url, migrate=False)
    try:
        upgrade(store.engine, "0007")
        with store.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO incidents (id, scope, title, status, severity, opened_at, last_event_at, event_count,"
                " alert_count, suppressed_count, services, firing, centroid) VALUES ('inc-1', 'global', 't', 'open',"
                " 'critical', :t, :t, 1, 1, 0, '[\"checkout\"]', '[]', :c)"),
                {"t": T0, "c": "[0.6, 0.8, 0.0]"})
        upgrade(store.engine)
        with store.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT centroid_f32 FROM incidents WHERE id = 'inc-1'")).scalar_one()
    finally:
        store.close()
    assert np.frombuffer(stored, dtype="<f4").tolist() == np.array([0.6, 0.8, 0.0], dtype=np.float32).tolist()


def test_postgresql_plans_each_lookup_with_its_own_values(pg_database: str) -> None:
    """A generic plan fixed while the tables were small scanned them whole as they grew."""
    store = SqlStore.from_url(pg_database, migrate=False)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
    finally:
        store.close()


def _table_rows(store: SqlStore, table: sa.Table, skip: set[str]) -> list[tuple[object, ...]]:
    columns = [c for c in table.c if c.name not in skip]
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*columns).order_by(*table.primary_key.columns))]


def test_a_large_batch_stores_what_small_batches_store(store_url: str, tmp_path: Path) -> None:
    """On PostgreSQL a batch of COPY_MIN_ROWS events or more is written by COPY (and its
    signal upsert through a staging table): the rows must be the ones small batches write."""
    from triage.store import schema as t
    from triage.store.bulk import COPY_MIN_ROWS

    events = _bundled_storm(2 * COPY_MIN_ROWS + 40)
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.id))
    large = SqlStore.from_url(store_url)
    small = SqlStore.from_url(f"sqlite:///{tmp_path / 'small.db'}")
    try:
        Pipeline(large, EMBEDDER)(ordered[:COPY_MIN_ROWS + 20])           # signals inserted by COPY
        Pipeline(large, EMBEDDER)(ordered[COPY_MIN_ROWS + 20:])           # and updated through the stage
        for i in range(0, len(ordered), 10):
            Pipeline(small, EMBEDDER)(ordered[i:i + 10])
        for table, skip in ((t.events, {"received_at"}), (t.memberships, {"decided_at"}), (t.signals, set())):
            got, want = _table_rows(large, table, skip), _table_rows(small, table, skip)
            assert len(got) == len(want) > 0 and got == want, table.name
    finally:
        large.close()
        small.close()


def test_a_large_batch_after_a_failed_one_on_the_same_connection(
        store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The staging table is created inside the batch's transaction; a batch rolled back
    takes it with it, and the next large batch must create it again."""
    from triage.store.bulk import COPY_MIN_ROWS

    ordered = sorted(_bundled_storm(2 * COPY_MIN_ROWS), key=lambda e: (e.occurred_at, e.id))
    pipeline = Pipeline(store, EMBEDDER)

    def outage(*_: object) -> None:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(pipeline_module, "record_edges", outage)   # fails after the COPYs
    with pytest.raises(RuntimeError):
        pipeline(ordered[:COPY_MIN_ROWS])
    monkeypatch.undo()
    assert store.count_events() == 0
    pipeline(ordered[:COPY_MIN_ROWS])
    pipeline(ordered[COPY_MIN_ROWS:])
    assert store.count_events() == len(ordered)


def test_a_batch_opens_with_its_locks_stored_ids_signals_and_parameters(store: SqlStore) -> None:
    """``BatchReads.opening`` (one round trip on PostgreSQL) reads what the separate
    statements read, in the same transaction, after bumping the scopes."""
    from triage.models.parameters import CorrelationParameters
    from triage.store.parameters import ParameterStore

    first = [make_event(0, id="a1", fingerprint="fa"), make_event(5, id="a2", fingerprint="fb")]
    Pipeline(store, EMBEDDER)(first)
    ParameterStore(store.engine).put(CorrelationParameters(threshold=0.6), author="sre", reason="test")
    keys = ["alertmanager:fa", "alertmanager:fb", "alertmanager:unknown"]
    with store.engine.begin() as conn:
        opened = store._batches.opening.opening(conn, ["domain:x", "global"], ["a1", "a2", "a3"], keys)
        assert opened.revisions == {"domain:x": 1, "global": 2}
        assert opened.stored == {"a1", "a2"}
        assert opened.newest_parameters == 1
        assert sorted(opened.signals) == sorted(store._batches.opening.signals(conn, keys))
        assert [s[0] for s in sorted(opened.signals)] == ["alertmanager:fa", "alertmanager:fb"]
        assert sorted(opened.signals)[0][3] == T0     # aware UTC datetimes, as the separate read gives
        conn.rollback()
