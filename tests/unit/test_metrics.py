"""Grouping scores on small partitions whose values were worked out by hand."""

from __future__ import annotations

import itertools
import random

import pytest

from triage.evaluation.metrics import adjusted_rand_index, grouping_accuracy, pairwise_scores

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
