"""How well one grouping of items agrees with another: the clustering scores every
grouping evaluation shares (log templates, alert groups in ``triage eval``; responders'
merges and splits in ``GET /stats/quality``; the what-if's replays against them).

The scores work on two parallel label sequences, one label per item: the ground-truth
group and the predicted group. Labels only need to be hashable and are compared within
one sequence, never across the two, so the predicted labels may be any ids (cluster
numbers, template hashes, incident ids).

Everything is computed from the contingency table (how many items carry each
(truth, pred) label pair), so the cost is linear in the number of items even for
streams of tens of thousands of events, where enumerating pairs would be quadratic.
Pure functions: the models layer holds them so that services may use them too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

__all__ = ["PairCounts", "adjusted_rand_index", "bcubed_scores", "grouping_accuracy", "pair_counts",
           "pairwise_scores"]


def _pairs(count: int) -> int:
    return count * (count - 1) // 2


def _check(truth: Sequence[Hashable], pred: Sequence[Hashable]) -> None:
    if len(truth) != len(pred):
        raise ValueError(f"truth has {len(truth)} labels but pred has {len(pred)}")


def _tables(
    truth: Sequence[Hashable], pred: Sequence[Hashable]
) -> tuple[Counter[tuple[Hashable, Hashable]], Counter[Hashable], Counter[Hashable]]:
    _check(truth, pred)
    cells: Counter[tuple[Hashable, Hashable]] = Counter(zip(truth, pred))
    truth_sizes: Counter[Hashable] = Counter(truth)
    pred_sizes: Counter[Hashable] = Counter(pred)
    return cells, truth_sizes, pred_sizes


def grouping_accuracy(truth: Sequence[Hashable], pred: Sequence[Hashable]) -> float:
    """Share of items whose predicted group is exactly their true group.

    Matches logpai/logparser's ``get_accuracy``: a predicted group scores all its
    items when it holds one true label and every item carrying that label, and
    none of them otherwise. An empty input scores 1.0 (nothing was misgrouped).
    """
    cells, truth_sizes, pred_sizes = _tables(truth, pred)
    if not truth:
        return 1.0
    # Each predicted group is exact iff one cell covers both its whole row and its
    # whole column of the table.
    correct = sum(
        count
        for (true_label, pred_label), count in cells.items()
        if count == pred_sizes[pred_label] == truth_sizes[true_label]
    )
    return correct / len(truth)


@dataclass(frozen=True)
class PairCounts:
    """Unordered pairs of items: together in both groupings, in the truth, in the prediction."""

    both: int
    truth: int
    pred: int


def pair_counts(truth: Sequence[Hashable], pred: Sequence[Hashable]) -> PairCounts:
    """How many pairs of items share a label in both sequences, in ``truth``, in ``pred``."""
    cells, truth_sizes, pred_sizes = _tables(truth, pred)
    return PairCounts(both=sum(_pairs(c) for c in cells.values()),
                      truth=sum(_pairs(c) for c in truth_sizes.values()),
                      pred=sum(_pairs(c) for c in pred_sizes.values()))


def pairwise_scores(
    truth: Sequence[Hashable], pred: Sequence[Hashable]
) -> tuple[float, float, float]:
    """Pair-counting (precision, recall, F1) over all unordered pairs of items.

    A pair is positive in truth when both items share a true label and predicted
    positive when both share a predicted label. When a side has no positive pairs
    at all (all singletons) its ratio is vacuously 1.0, so all-singletons against
    all-singletons is perfect, while all-singletons against real groups still gets
    recall 0 and F1 0. F1 is 0.0 when precision and recall are both 0.
    """
    counts = pair_counts(truth, pred)
    both, pred_pairs, truth_pairs = counts.both, counts.pred, counts.truth
    precision = both / pred_pairs if pred_pairs else 1.0
    recall = both / truth_pairs if truth_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def bcubed_scores(
    truth: Sequence[Hashable], pred: Sequence[Hashable]
) -> tuple[float, float, float]:
    """B-cubed (precision, recall, F1) (Bagga and Baldwin 1998; Amigó et al. 2009).

    Each item is scored by its own groups: its precision is the share of its predicted
    group that shares its true label, its recall the share of its true group that
    shares its predicted group; both are averaged over all items, and F1 is the
    harmonic mean of the two averages. Unlike pair counting, a large group weighs in
    proportion to its items, not to the square of them, so one big incident cannot
    dominate the score. An empty input scores 1.0 (nothing was misgrouped).
    """
    cells, truth_sizes, pred_sizes = _tables(truth, pred)
    n = len(truth)
    if n == 0:
        return 1.0, 1.0, 1.0
    # The ``count`` items of one cell each see ``count`` items of their own true label
    # in their predicted group: the cell adds count * count / group size.
    precision = sum(c * c / pred_sizes[p] for (_, p), c in cells.items()) / n
    recall = sum(c * c / truth_sizes[t] for (t, _), c in cells.items()) / n
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def adjusted_rand_index(truth: Sequence[Hashable], pred: Sequence[Hashable]) -> float:
    """Hubert and Arabie's adjusted Rand index: pair agreement corrected for chance.

    1.0 for identical partitions, about 0 for random ones, negative when worse than
    chance. The degenerate cases whose chance correction divides by zero (fewer than
    two items, or both sides one group, or both sides all singletons) are identical
    partitions and score 1.0, as scikit-learn does.
    """
    cells, truth_sizes, pred_sizes = _tables(truth, pred)
    n = len(truth)
    if n < 2:
        return 1.0
    index = sum(_pairs(c) for c in cells.values())
    truth_pairs = sum(_pairs(c) for c in truth_sizes.values())
    pred_pairs = sum(_pairs(c) for c in pred_sizes.values())
    expected = truth_pairs * pred_pairs / _pairs(n)
    maximum = (truth_pairs + pred_pairs) / 2
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)
