"""The what-if's pure parts: alert episodes, regroupings from a contingency table, the
command line's `--set` and times."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import T0
from triage.services.whatif import Regrouped, _Episodes, _regroupings
from triage.whatif_report import parse_assignments, parse_time


def test_an_alert_resolved_within_the_bound_is_a_transient_episode() -> None:
    episodes = _Episodes(transient_s=300)
    first = episodes.of("fa", True, T0)
    assert episodes.of("fa", True, T0 + timedelta(seconds=60)) == first       # a re-send: the same episode
    assert episodes.of("fa", False, T0 + timedelta(seconds=300)) is None      # resolved at the bound: transient
    again = episodes.of("fa", True, T0 + timedelta(seconds=400))              # fires again: a new episode
    assert again != first
    episodes.of("fa", False, T0 + timedelta(seconds=701))                     # 301 s: not transient
    long = episodes.of("fb", True, T0)                                        # never resolved: not transient
    assert episodes.of("fc", False, T0) is None                               # a resolve of nothing
    assert episodes.transient == {first} and long not in episodes.transient


def test_regroupings_name_merges_and_splits_with_the_stored_incidents() -> None:
    # in force: A = 3 events, B = 2, C = 4; candidate: A and B as X, C as Y (2) and Z (2)
    cells = Counter({("A", "X"): 3, ("B", "X"): 2, ("C", "Y"): 2, ("C", "Z"): 2})
    stored = Counter({("A", "inc-a"): 3, ("B", "inc-b"): 1, ("B", "inc-a"): 1, ("C", "inc-c"): 4})
    merges, splits = _regroupings(cells, stored)
    # B's events are as many in inc-a as in inc-b: the smaller id is its home
    assert merges == [Regrouped(("A", "B"), ("X",), ("inc-a",), 5)]
    assert splits == [Regrouped(("C",), ("Y", "Z"), ("inc-c",), 4)]
    assert _regroupings(Counter({("A", "A"): 3}), Counter()) == ([], [])


def test_set_values_are_json_else_text_and_times_default_to_utc() -> None:
    assert parse_assignments(["threshold=0.6", "require_topology=false", "max_hops=3", "x=high"]) == {
        "threshold": 0.6, "require_topology": False, "max_hops": 3, "x": "high"}
    with pytest.raises(ValueError, match="name=value"):
        parse_assignments(["threshold"])
    utc = timezone.utc
    assert parse_time("2026-03-11T08:00:00Z") == datetime(2026, 3, 11, 8, tzinfo=utc)
    assert parse_time("2026-03-11T10:00") == datetime(2026, 3, 11, 10, tzinfo=utc)
    assert parse_time("2026-03-11") == datetime(2026, 3, 11, tzinfo=utc)
    assert parse_time("2026-03-11T10:00+02:00") == datetime(2026, 3, 11, 8, tzinfo=utc)
