"""The alert-grouping evaluation: loader, the two reference baselines, the report rows."""

from __future__ import annotations

import gzip
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EMBEDDER
from triage.evaluation.alerts import (
    alertmanager_engine,
    count_pages,
    evaluate_alerts,
    fingerprint_engine,
    format_alerts_table,
    load_labeled_events,
    triage_engine,
    triage_replay,
)
from triage.ingest.decode import event_from_dict
from triage.domain.event import Event
from triage.models.parameters import CorrelationParameters

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def _row(
    id: str, at: float, *, kind: str = "alert", status: str = "firing", fingerprint: str | None = None,
    alertname: str | None = None, service: str | None = "cart", host: str | None = "node-1",
    source: str = "alertmanager", truth: str = "INC-1",
) -> dict[str, Any]:
    labels: dict[str, Any] = {"alertname": alertname} if alertname else {}
    return {
        "id": id, "kind": kind, "source": source if kind == "alert" else "otel",
        "occurred_at": (T0 + timedelta(seconds=at)).isoformat().replace("+00:00", "Z"),
        "service": service, "host": host, "severity": "warning", "status": status,
        "title": f"{alertname or kind} {id}", "labels": labels, "fingerprint": fingerprint,
        "truth_incident": truth, "truth_root_cause": {"component": service, "kind": "test"},
    }


def _events(*rows: dict[str, Any]) -> list[Event]:
    return [event_from_dict(r) for r in rows]


def _same(groups: list[str], *indices: int) -> bool:
    return len({groups[i] for i in indices}) == 1


def _partition(groups: list[str]) -> set[frozenset[int]]:
    """Group ids are opaque: compare which events ended up together."""
    by_id: dict[str, set[int]] = {}
    for i, g in enumerate(groups):
        by_id.setdefault(g, set()).add(i)
    return {frozenset(s) for s in by_id.values()}


# -- fingerprint baseline --------------------------------------------------------------


def test_fingerprint_one_group_per_firing_episode() -> None:
    events = _events(
        _row("a1", 0, fingerprint="fa", alertname="HighLatency"),
        _row("a2", 60, fingerprint="fa", alertname="HighLatency"),      # re-notification
        _row("a3", 120, fingerprint="fa", alertname="HighLatency", status="resolved"),
        _row("a4", 125, fingerprint="fa", alertname="HighLatency", status="resolved"),  # re-sent resolve
        _row("a5", 600, fingerprint="fa", alertname="HighLatency"),     # fires again: new episode
        _row("a6", 660, fingerprint="fa", alertname="HighLatency", status="resolved"),
    )
    assert _partition(fingerprint_engine(events)) == {frozenset({0, 1, 2, 3}), frozenset({4, 5})}


def test_fingerprint_keeps_fingerprints_apart_and_logs_single() -> None:
    events = _events(
        _row("a1", 0, fingerprint="fa", alertname="HighLatency"),
        _row("b1", 10, fingerprint="fb", alertname="HighLatency"),      # same rule, other pod
        _row("l1", 20, kind="log"),
        _row("l2", 21, kind="log"),                                      # identical-looking log
        _row("s1", 22, kind="span"),
        _row("d1", 30, fingerprint="fa", alertname="HighLatency", source="datadog"),  # other tool
        _row("a2", 40, fingerprint="fa", alertname="HighLatency"),
        _row("r1", 50, fingerprint="fz", alertname="Gone", status="resolved"),  # never seen firing
    )
    groups = fingerprint_engine(events)
    assert _partition(groups) == {frozenset({0, 6}), *(frozenset({i}) for i in (1, 2, 3, 4, 5, 7))}


def test_fingerprint_chronic_alert_stays_one_group() -> None:
    # A warning that never resolves keeps re-notifying: all one episode however long.
    events = _events(*(_row(f"c{i}", i * 4 * 3600, fingerprint="fc", alertname="DiskFilling") for i in range(5)))
    assert len(set(fingerprint_engine(events))) == 1


# -- alertmanager baseline -------------------------------------------------------------


def test_alertmanager_groups_by_alertname_and_service() -> None:
    engine = alertmanager_engine()
    events = _events(
        _row("a1", 0, fingerprint="p1", alertname="PodCrashLooping", service="cart"),
        _row("a2", 20, fingerprint="p2", alertname="PodCrashLooping", service="cart"),   # other pod
        _row("b1", 25, fingerprint="q1", alertname="PodCrashLooping", service="checkout"),
        _row("c1", 30, fingerprint="r1", alertname="HighLatency", service="cart"),
        _row("n1", 40, fingerprint="h1", alertname="NodeDiskFull", service=None, host="node-1"),
        _row("n2", 50, fingerprint="h2", alertname="NodeDiskFull", service=None, host="node-1"),
        _row("n3", 55, fingerprint="h3", alertname="NodeDiskFull", service=None, host="node-2"),
    )
    groups = engine(events)
    assert _partition(groups) == {
        frozenset({0, 1}), frozenset({2}), frozenset({3}), frozenset({4, 5}), frozenset({6}),
    }


def test_alertmanager_group_lives_while_firing_or_within_group_interval() -> None:
    engine = alertmanager_engine(group_interval=300)
    events = _events(
        _row("a1", 0, fingerprint="p1", alertname="HighLatency"),
        # Firing keeps the group alive well past group_interval.
        _row("a2", 1000, fingerprint="p2", alertname="HighLatency"),
        _row("r1", 1100, fingerprint="p1", alertname="HighLatency", status="resolved"),
        _row("r2", 1200, fingerprint="p2", alertname="HighLatency", status="resolved"),
        # Nothing firing but the last event was 290 s ago: still the same group.
        _row("a3", 1490, fingerprint="p1", alertname="HighLatency"),
        _row("r3", 1500, fingerprint="p1", alertname="HighLatency", status="resolved"),
        # Nothing firing and 301 s of silence: a new group, i.e. a new page.
        _row("a4", 1801, fingerprint="p1", alertname="HighLatency"),
    )
    assert _partition(engine(events)) == {frozenset(range(6)), frozenset({6})}


def test_alertmanager_logs_and_spans_group_by_kind() -> None:
    engine = alertmanager_engine()
    events = _events(
        _row("l1", 0, kind="log"),
        _row("l2", 200, kind="log"),
        _row("s1", 210, kind="span"),
        _row("l3", 800, kind="log"),                 # 600 s after l2, logs never "fire" on
        _row("l4", 801, kind="log", service=None),   # falls back to its host
    )
    assert _partition(engine(events)) == {frozenset({0, 1}), frozenset({2}), frozenset({3}), frozenset({4})}


def test_alertmanager_rejects_negative_timers() -> None:
    with pytest.raises(ValueError, match="group_interval"):
        alertmanager_engine(group_interval=-1)


def test_engines_answer_in_callers_order() -> None:
    rows = [
        _row("a1", 0, fingerprint="fa", alertname="X"),
        _row("a2", 30, fingerprint="fa", alertname="X", status="resolved"),
        _row("a3", 900, fingerprint="fa", alertname="X"),
        _row("l1", 5, kind="log"),
        _row("b1", 10, fingerprint="fb", alertname="X"),
        _row("b2", 2000, fingerprint="fb", alertname="X", status="resolved"),
    ]
    ordered = _events(*rows)
    shuffled_rows = rows[:]
    random.Random(7).shuffle(shuffled_rows)
    shuffled = _events(*shuffled_rows)
    for engine in (fingerprint_engine, alertmanager_engine(), triage_engine(embedder=EMBEDDER)):
        by_id = dict(zip((e.id for e in ordered), engine(ordered), strict=True))
        expected = _partition([by_id[e.id] for e in shuffled])
        assert _partition(engine(shuffled)) == expected


def test_triage_engine_starts_fresh_on_every_call() -> None:
    engine = triage_engine(embedder=EMBEDDER)
    events = _events(_row("a1", 0, fingerprint="fa", alertname="X"), _row("l1", 10, kind="log"))
    first = engine(events)
    assert len(first) == 2
    assert engine(events) == first


# -- triage's pages ----------------------------------------------------------------


def _pages(parameters: CorrelationParameters, *rows: dict[str, Any]) -> list[tuple[str, float]]:
    """(first event id of the paged group, seconds after T0) per page triage_replay sends."""
    events = _events(*rows)
    result = triage_replay(parameters, embedder=EMBEDDER)(events)
    first = {}
    for event, group in zip(events, result.groups, strict=True):
        first.setdefault(group, event.id)
    return [(first[p.group], (p.at - T0).total_seconds()) for p in result.pages]


def test_triage_pages_one_incident_once_after_group_wait() -> None:
    pages = _pages(CorrelationParameters(group_wait=30, auto_pause=0),
                   _row("a1", 0, fingerprint="fa", alertname="CartDown"),
                   _row("a2", 20, fingerprint="fb", alertname="CartErrors"),
                   _row("a3", 400, fingerprint="fb", alertname="CartErrors"),   # re-notification
                   _row("l1", 25, kind="log"))
    assert pages == [("a1", 30.0)]


def test_triage_auto_pause_holds_the_first_page_and_drops_transients() -> None:
    pages = _pages(CorrelationParameters(auto_pause=60),
                   # resolves inside its pause: transient, nobody is paged
                   _row("t1", 0, fingerprint="ta", alertname="AdsSlow", service="ads", host=None),
                   _row("t2", 40, fingerprint="ta", alertname="AdsSlow", service="ads", host=None,
                        status="resolved"),
                   # still firing when its pause is over: paged then (the ticker), though
                   # no later event of its own arrives
                   _row("a1", 1000, fingerprint="fa", alertname="CartDown"),
                   _row("b1", 2000, fingerprint="fb", alertname="ShippingDown", service="shipping",
                        host="node-9"))
    # The last one is still held when the stream ends: the ticker sends it at its due time.
    assert pages == [("a1", 1060.0), ("b1", 2060.0)]


@pytest.mark.parametrize(("refire_at", "expected"), [
    # re-fired 70 s after its resolve, within reopen_window (120 s): the resolve was held,
    # so the page stays open and the trigger updates it (PagerDuty: no new page)
    (320, [("a1", 30.0)]),
    (280, [("a1", 30.0)]),                  # within group_interval of its page: no trigger at all
    # after reopen_window the resolve went out, and the incident no longer accepts the
    # alert: a new incident, a new page
    (380, [("a1", 30.0), ("a3", 410.0)]),
])
def test_a_resolve_waits_reopen_window_so_a_flapping_alert_does_not_page_again(
        refire_at: float, expected: list[tuple[str, float]]) -> None:
    pages = _pages(CorrelationParameters(group_wait=30, group_interval=300, auto_pause=0, reopen_window=120,
                                           chronic_window=0),   # (no damping of the re-fired family)
                   _row("a1", 0, fingerprint="fa", alertname="CartDown"),
                   _row("a2", 250, fingerprint="fa", alertname="CartDown", status="resolved"),
                   _row("a3", refire_at, fingerprint="fa", alertname="CartDown"))
    assert pages == expected


def test_triage_replay_groups_are_triage_engines() -> None:
    events = _events(*(_row(f"a{i}", 10 * i, fingerprint=f"f{i % 3}", alertname=f"A{i % 2}") for i in range(8)),
                     _row("l1", 15, kind="log"))
    assert triage_replay(embedder=EMBEDDER)(events).groups == triage_engine(embedder=EMBEDDER)(events)


# -- loader and report ---------------------------------------------------------------


def _write(directory: Path, rows: list[dict[str, Any]], *, compressed: bool) -> None:
    directory.mkdir()
    text = "".join(json.dumps(r) + "\n" for r in rows) + "\n"   # a trailing blank line is fine
    if compressed:
        with gzip.open(directory / "events.jsonl.gz", "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        (directory / "events.jsonl").write_text(text, encoding="utf-8")


LABELED = [
    _row("e3", 30, kind="log", truth="noise-1"),
    _row("e1", 0, fingerprint="fa", alertname="X", truth="INC-7"),
    _row("e2", 10, fingerprint="fa", alertname="X", status="resolved", truth="INC-7"),
    _row("e0", 10, kind="span", truth="INC-7"),          # same instant as e2: id breaks the tie
]


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_loader_reads_sorted_events_and_parallel_labels(tmp_path: Path, compressed: bool) -> None:
    directory = tmp_path / "set"
    _write(directory, LABELED, compressed=compressed)
    events, truth = load_labeled_events(directory)
    assert [e.id for e in events] == ["e1", "e0", "e2", "e3"]
    assert truth == ["INC-7", "INC-7", "INC-7", "noise-1"]
    assert all(isinstance(e, Event) for e in events)
    # The engine input carries no trace of the ground truth.
    assert not any("truth" in json.dumps(e.model_dump(mode="json")) for e in events)


def test_loader_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_labeled_events(tmp_path)
    directory = tmp_path / "bad"
    unlabeled = {k: v for k, v in LABELED[1].items() if k != "truth_incident"}
    _write(directory, [LABELED[0], unlabeled], compressed=False)
    with pytest.raises(ValueError, match=r"events\.jsonl:2: missing 'truth_incident'"):
        load_labeled_events(directory)


def test_pages_are_groups_holding_a_firing_alert() -> None:
    events = _events(
        _row("a", 0, fingerprint="fa", alertname="X"),
        _row("b", 5, fingerprint="fb", alertname="Y"),
        _row("c", 9, kind="log"),
        _row("d", 9, kind="span"),
        _row("e", 12, fingerprint="fc", alertname="Z", status="resolved"),
    )
    # Two firing alerts in one group page once; logs and spans alone, and a resolve alone, never.
    assert count_pages(events, ["g1", "g1", "g2", "g2", "g3"]) == 1
    # A log joining an alert's group changes nothing; each firing alert alone is a page.
    assert count_pages(events, ["g1", "g2", "g1", "g3", "g4"]) == 2


def test_the_catalog_run_declares_the_data_sets_service_catalog(tmp_path: Path) -> None:
    # Two alerts of one incident on two services that only the catalog relates (no spans).
    directory = tmp_path / "catalogued"
    _write(directory, [_row("c1", 0, fingerprint="a", alertname="CartDown", service="cart", host=None),
                       _row("c2", 20, fingerprint="b", alertname="CheckoutErrors", service="checkout", host=None)],
           compressed=False)
    with pytest.raises(FileNotFoundError, match=r"services\.yaml: not found"):
        evaluate_alerts(directory, catalog=True, embedder=EMBEDDER)
    (directory / "services.yaml").write_text(
        "services:\n  - service: checkout\n    depends_on: [cart]\n  - service: cart\n    depends_on: []\n")
    rows = {(r["scope"], r["engine"]): r for r in evaluate_alerts(directory, catalog=True, embedder=EMBEDDER)}
    assert rows[("all", "triage")]["groups"] == 2            # no relation known: kept apart
    assert rows[("all", "triage+catalog")]["groups"] == 1    # checkout depends on cart
    assert rows[("alerts", "triage+catalog")]["recall"] == 1.0
    assert "triage+catalog" not in {r["engine"] for r in evaluate_alerts(directory, embedder=EMBEDDER)}


PAGING_KEYS = {"incidents", "exact", "pages_per_incident", "missed", "time_to_page_p50_s",
               "time_to_page_p95_s", "noise_pages"}


def test_evaluate_alerts_rows_and_table(tmp_path: Path) -> None:
    directory = tmp_path / "tiny-set"
    _write(directory, LABELED, compressed=True)
    rows = evaluate_alerts(directory, embedder=EMBEDDER)
    assert [(r["scope"], r["engine"]) for r in rows] == [
        (s, e) for s in ("all", "alerts") for e in ("triage", "fingerprint", "alertmanager", "truth")
    ]
    keys = {"dataset", "scope", "engine", "events", "groups", "pages", "compression", "precision",
            "recall", "f1", "ari", "b3_precision", "b3_recall", "b3_f1", "events_per_s"} | PAGING_KEYS
    for r in rows:
        assert set(r) == keys
        assert r["dataset"] == "tiny-set"
        assert r["events"] == (4 if r["scope"] == "all" else 2)
        assert r["compression"] == pytest.approx(1 - r["groups"] / r["events"])
        # No DIR/incidents.jsonl: which truth ids are incidents is unknown.
        assert all(r[k] is None for k in PAGING_KEYS)
        if r["engine"] == "truth":
            assert (r["f1"], r["ari"], r["b3_f1"], r["events_per_s"]) == (1.0, 1.0, 1.0, None)
            assert (r["groups"], r["pages"]) == ((2, 1) if r["scope"] == "all" else (1, 1))
        else:
            assert r["events_per_s"] > 0
    fingerprint_all = next(r for r in rows if r["engine"] == "fingerprint" and r["scope"] == "all")
    # e1+e2 together, e0 and e3 alone: the only true pair found (precision 1), 1 of 3 (recall).
    assert fingerprint_all["groups"] == 3
    # Only e1's group holds a firing alert: the log's and the span's singletons page nobody.
    assert fingerprint_all["pages"] == 1
    assert (fingerprint_all["precision"], fingerprint_all["recall"]) == pytest.approx((1.0, 1 / 3))
    # B-cubed: every item precision 1; recall 2/3 for e1 and e2, 1/3 for e0, 1 for e3.
    assert (fingerprint_all["b3_precision"], fingerprint_all["b3_recall"]) == pytest.approx((1.0, 2 / 3))

    grouping, paging = format_alerts_table(rows).split("\n\n")
    for table, header in ((grouping, ["dataset", "scope", "engine", "events", "groups", "compression", "P", "R",
                                      "F1", "ARI", "B3", "P", "B3", "R", "B3", "F1", "events/s"]),
                          (paging, ["dataset", "scope", "engine", "incidents", "pages", "exact", "pages/incident",
                                    "missed", "to", "page", "p50", "s", "to", "page", "p95", "s", "noise", "pages"])):
        lines = table.splitlines()
        assert lines[0].split() == header
        assert len(lines) == 2 + len(rows)
        # Right-aligned numeric columns end where the header ends.
        assert len({len(line) for line in lines}) == 1


def test_evaluate_alerts_paging_figures(tmp_path: Path) -> None:
    directory = tmp_path / "paged"
    _write(directory, [
        *LABELED,
        # a noise alert on another service, long after: its own group and page everywhere
        _row("n1", 3000, fingerprint="fn", alertname="DiskFilling", service="ads", host="node-7", truth="noise-2"),
        # an incident that fires nothing is not one a page can be owed for
        _row("q1", 4000, kind="log", service="ads", host="node-7", truth="INC-8"),
    ], compressed=False)
    (directory / "incidents.jsonl").write_text('{"id": "INC-7"}\n{"id": "INC-8"}\n', encoding="utf-8")
    # (auto_pause 0: the pages go out group_wait after the alerts, as this test counts them)
    rows = {(r["scope"], r["engine"]): r
            for r in evaluate_alerts(directory, CorrelationParameters(auto_pause=0), embedder=EMBEDDER)}
    for scope in ("all", "alerts"):
        truth, triage = rows[(scope, "truth")], rows[(scope, "triage")]
        assert (truth["incidents"], truth["pages"], truth["exact"], truth["pages_per_incident"], truth["missed"],
                truth["noise_pages"]) == (1, 2, 1.0, 1.0, 0, 1)
        assert truth["time_to_page_p50_s"] == truth["time_to_page_p95_s"] == 0.0
        # triage pages INC-7 once, group_wait (30 s) after its first alert, and the noise alert.
        assert (triage["incidents"], triage["pages"], triage["exact"], triage["missed"], triage["noise_pages"]) \
            == (1, 2, 1.0, 0, 1)
        assert triage["time_to_page_p95_s"] == 30.0
    with pytest.raises(ValueError, match=r"incidents\.jsonl:1: an incident needs a string 'id'"):
        (directory / "incidents.jsonl").write_text('{"name": "INC-7"}\n', encoding="utf-8")
        evaluate_alerts(directory, embedder=EMBEDDER)
