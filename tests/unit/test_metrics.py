"""Grouping scores on small partitions whose values were worked out by hand."""

from __future__ import annotations

import itertools
import random

import pytest

from triage.evaluation.metrics import (
    Page,
    adjusted_rand_index,
    bcubed_scores,
    grouping_accuracy,
    page_scores,
    pairwise_scores,
    percentile,
)

# truth: {0,1,2} {3,4}; pred: {0,1} {2,3,4}
TRUTH = ["a", "a", "a", "b", "b"]
PRED = [1, 1, 2, 2, 2]


# ------------------------------------------------------------------------ GA


def test_ga_perfect_grouping_with_other_label_names() -> None:
    assert grouping_accuracy(TRUTH, ["x", "x", "x", "y", "y"]) == 1.0


def test_ga_counts_only_exact_groups() -> None:
    # Neither predicted group equals a true group.
    assert grouping_accuracy(TRUTH, PRED) == 0.0
    # {0,1,2} exact (3 lines); {3} and {4} split their true group: wrong.
    assert grouping_accuracy(TRUTH, [1, 1, 1, 2, 3]) == pytest.approx(3 / 5)


def test_ga_one_stray_line_spoils_the_whole_group() -> None:
    truth = ["a", "a", "a", "a", "b"]
    assert grouping_accuracy(truth, [1, 1, 1, 1, 1]) == 0.0
    assert grouping_accuracy(truth, [1, 1, 1, 1, 2]) == 1.0


def test_ga_all_singletons() -> None:
    assert grouping_accuracy(["a", "b", "c"], [1, 2, 3]) == 1.0
    assert grouping_accuracy(["a", "a", "a"], [1, 2, 3]) == 0.0


def test_ga_one_group() -> None:
    assert grouping_accuracy(["a", "a", "a"], [7, 7, 7]) == 1.0
    assert grouping_accuracy(["a", "b", "c"], [7, 7, 7]) == 0.0


def test_ga_degenerate_inputs() -> None:
    assert grouping_accuracy([], []) == 1.0
    assert grouping_accuracy(["a"], ["z"]) == 1.0
    with pytest.raises(ValueError):
        grouping_accuracy(["a", "b"], [1])


# ------------------------------------------------------------ pairwise P/R/F1


def test_pairwise_hand_example() -> None:
    # truth pairs: C(3,2)+C(2,2) = 4; predicted pairs: C(2,2)+C(3,2) = 4;
    # shared: (0,1) and (3,4) = 2.
    precision, recall, f1 = pairwise_scores(TRUTH, PRED)
    assert (precision, recall, f1) == pytest.approx((0.5, 0.5, 0.5))


def test_pairwise_over_merge_keeps_recall() -> None:
    # One predicted group: 10 predicted pairs, 4 of them true.
    precision, recall, f1 = pairwise_scores(TRUTH, [0] * 5)
    assert precision == pytest.approx(0.4)
    assert recall == 1.0
    assert f1 == pytest.approx(2 * 0.4 / 1.4)


def test_pairwise_all_singletons() -> None:
    assert pairwise_scores(["a", "b", "c"], [1, 2, 3]) == (1.0, 1.0, 1.0)
    # No predicted pairs: precision is vacuously 1, but nothing was recalled.
    assert pairwise_scores(["a", "a", "a"], [1, 2, 3]) == (1.0, 0.0, 0.0)


def test_pairwise_one_group() -> None:
    assert pairwise_scores(["a", "a", "a"], [5, 5, 5]) == (1.0, 1.0, 1.0)
    # Three predicted pairs, none true; no true pairs to recall.
    assert pairwise_scores(["a", "b", "c"], [5, 5, 5]) == (0.0, 1.0, 0.0)


def _pairwise_by_enumeration(truth: list[int], pred: list[int]) -> tuple[float, float, float]:
    both = same_truth = same_pred = 0
    for i, j in itertools.combinations(range(len(truth)), 2):
        t, p = truth[i] == truth[j], pred[i] == pred[j]
        same_truth += t
        same_pred += p
        both += t and p
    precision = both / same_pred if same_pred else 1.0
    recall = both / same_truth if same_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def test_pairwise_from_contingency_equals_pair_enumeration() -> None:
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(0, 25)
        truth = [rng.randint(0, 4) for _ in range(n)]
        pred = [rng.randint(0, 4) for _ in range(n)]
        assert pairwise_scores(truth, pred) == pytest.approx(_pairwise_by_enumeration(truth, pred))


# ----------------------------------------------------------------------- ARI


def test_ari_hand_example() -> None:
    # index 2, expected 4*4/C(5,2) = 1.6, max (4+4)/2 = 4: (2-1.6)/(4-1.6) = 1/6
    assert adjusted_rand_index(TRUTH, PRED) == pytest.approx(1 / 6)


def test_ari_known_values() -> None:
    # index 1, expected 2*1/6 = 1/3, max 1.5: (1-1/3)/(1.5-1/3) = 4/7
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4 / 7)
    # index 0, expected 2*2/6 = 2/3, max 2: (0-2/3)/(2-2/3) = -1/2
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)


def test_ari_is_symmetric_and_label_free() -> None:
    assert adjusted_rand_index(TRUTH, PRED) == pytest.approx(adjusted_rand_index(PRED, TRUTH))
    assert adjusted_rand_index(TRUTH, ["p", "p", "q", "q", "q"]) == pytest.approx(1 / 6)


def test_ari_edge_cases() -> None:
    assert adjusted_rand_index(["a", "b", "c"], [1, 2, 3]) == 1.0      # all singletons
    assert adjusted_rand_index(["a", "a", "a"], [1, 1, 1]) == 1.0      # one group
    assert adjusted_rand_index(["a", "a", "a"], [1, 2, 3]) == 0.0      # one vs singletons
    assert adjusted_rand_index(["a", "b", "c"], [1, 1, 1]) == 0.0
    assert adjusted_rand_index([], []) == 1.0
    assert adjusted_rand_index(["a"], [1]) == 1.0
    with pytest.raises(ValueError):
        adjusted_rand_index(["a"], [])


# ------------------------------------------------------------------ B-cubed


def test_bcubed_hand_example() -> None:
    # Per item (precision, recall): 0 and 1 (1, 2/3); 2 (1/3, 1/3); 3 and 4 (2/3, 1).
    # Both averages are (2 + 1/3 + 4/3) / 5 = 11/15.
    assert bcubed_scores(TRUTH, PRED) == pytest.approx((11 / 15, 11 / 15, 11 / 15))


def test_bcubed_one_group_and_singletons() -> None:
    # One group: item precision 3/5 for the a's, 2/5 for the b's; recall 1.
    assert bcubed_scores(TRUTH, [0] * 5) == pytest.approx((13 / 25, 1.0, 2 * 13 / 25 / (1 + 13 / 25)))
    # Singletons: precision 1; recall 1/3 for the a's, 1/2 for the b's.
    assert bcubed_scores(TRUTH, [1, 2, 3, 4, 5]) == pytest.approx((1.0, 2 / 5, 2 * 2 / 5 / (1 + 2 / 5)))
    assert bcubed_scores(TRUTH, ["x", "x", "x", "y", "y"]) == (1.0, 1.0, 1.0)
    assert bcubed_scores([], []) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        bcubed_scores(["a"], [])


def test_bcubed_weighs_a_big_group_by_its_items_not_its_pairs() -> None:
    # One incident of 20 events, grouped right, and ten incidents of two events, each
    # split in two. Pairwise, the big incident's 190 pairs hide the ten lost ones
    # (recall 190/200); B-cubed scores each of the 20 small-incident events at 1/2.
    truth = ["big"] * 20 + [f"small-{i // 2}" for i in range(20)]
    pred = ["g"] * 20 + [f"s-{i}" for i in range(20)]
    assert pairwise_scores(truth, pred)[1] == pytest.approx(190 / 200)
    assert bcubed_scores(truth, pred)[:2] == pytest.approx((1.0, (20 * 1 + 20 * 0.5) / 40))


def _bcubed_per_item(truth: list[int], pred: list[int]) -> tuple[float, float]:
    n = len(truth)
    precision = sum(sum(1 for j in range(n) if pred[j] == pred[i] and truth[j] == truth[i])
                    / sum(1 for j in range(n) if pred[j] == pred[i]) for i in range(n)) / n
    recall = sum(sum(1 for j in range(n) if pred[j] == pred[i] and truth[j] == truth[i])
                 / sum(1 for j in range(n) if truth[j] == truth[i]) for i in range(n)) / n
    return precision, recall


def test_bcubed_from_contingency_equals_the_per_item_definition() -> None:
    rng = random.Random(11)
    for _ in range(200):
        n = rng.randint(1, 25)
        truth = [rng.randint(0, 4) for _ in range(n)]
        pred = [rng.randint(0, 4) for _ in range(n)]
        assert bcubed_scores(truth, pred)[:2] == pytest.approx(_bcubed_per_item(truth, pred))


# ---------------------------------------------------------------- percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(20, 0, -1)]     # 1..20, unordered
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([1.0, 2.0], 50) == 1.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 0)


# ------------------------------------------------------------------- paging


def test_page_scores_exact_shared_missed_and_noise() -> None:
    incidents = {"INC-1": 100.0, "INC-2": 200.0, "INC-3": 300.0, "INC-4": 400.0}
    pages = [
        Page(130.0, frozenset({"INC-1", "noise-1"})),   # INC-1 alone (noise alongside is fine)
        Page(230.0, frozenset({"INC-2"})),              # INC-2, first of two
        Page(800.0, frozenset({"INC-2"})),              # INC-2 again: a split
        Page(330.0, frozenset({"INC-3", "INC-4"})),     # one page, two incidents: merged
        Page(50.0, frozenset({"noise-2"})),
        Page(60.0, frozenset({"noise-3", "noise-4"})),
    ]
    scores = page_scores(pages, incidents)
    assert scores.pages == 6 and scores.incidents == 4
    # INC-1 only: INC-2 paged twice, INC-3 and INC-4 share their page.
    assert scores.exact == pytest.approx(1 / 4)
    assert scores.pages_per_incident == pytest.approx((1 + 2 + 1 + 1) / 4)
    assert scores.missed == 0
    assert scores.noise_pages == 2
    # Delays 30, 30, 30, and INC-4's page went out 70 s before its first alert: 0.
    assert (scores.time_to_page_p50_s, scores.time_to_page_p95_s) == (30.0, 30.0)


def test_page_scores_missed_incident_has_no_time_to_page() -> None:
    scores = page_scores([Page(10.0, frozenset({"INC-1"}))], {"INC-1": 0.0, "INC-2": 5.0})
    assert scores.missed == 1
    assert scores.exact == 0.5
    assert scores.pages_per_incident == 0.5
    assert (scores.time_to_page_p50_s, scores.time_to_page_p95_s) == (10.0, 10.0)
    assert scores.noise_pages == 0


def test_page_scores_late_page_counts_from_the_first_alert() -> None:
    scores = page_scores([Page(400.0, frozenset({"INC-1"})), Page(100.0, frozenset({"INC-2"}))],
                         {"INC-1": 0.0, "INC-2": 90.0})
    assert (scores.time_to_page_p50_s, scores.time_to_page_p95_s) == (10.0, 400.0)
    assert scores.exact == 1.0


def test_page_scores_without_incidents() -> None:
    scores = page_scores([Page(0.0, frozenset({"noise-1"}))], {})
    assert (scores.incidents, scores.exact, scores.pages_per_incident, scores.missed) == (0, 1.0, 0.0, 0)
    assert scores.time_to_page_p50_s is None and scores.noise_pages == 1
