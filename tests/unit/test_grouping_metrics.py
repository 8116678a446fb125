"""The clustering scores live in the models layer (services use them); eval re-exports them."""

from __future__ import annotations

from triage.evaluation import metrics as eval_metrics
from triage.models import grouping_metrics
from triage.models.grouping_metrics import PairCounts, pair_counts, pairwise_scores


def test_pair_counts_count_pairs_together_in_each_grouping() -> None:
    # truth {a b c} {d}; pred {a b} {c d}: pairs ab (both), ac, bc (truth), cd (pred)
    truth = ["x", "x", "x", "y"]
    pred = [1, 1, 2, 2]
    assert pair_counts(truth, pred) == PairCounts(both=1, truth=3, pred=2)
    assert pairwise_scores(truth, pred)[:2] == (1 / 2, 1 / 3)


def test_evaluation_uses_the_same_functions() -> None:
    for name in ("pairwise_scores", "bcubed_scores", "adjusted_rand_index", "grouping_accuracy"):
        assert getattr(eval_metrics, name) is getattr(grouping_metrics, name)
