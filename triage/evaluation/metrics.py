"""Clustering scores shared by every grouping evaluation (log templates, alert groups).

All three scores work on two parallel label sequences, one label per item: the
ground-truth group and the predicted group. Labels only need to be hashable and
are compared within one sequence, never across the two, so the predicted labels
may be any ids (cluster numbers, template hashes, incident ids).

Everything is computed from the contingency table (how many items carry each
(truth, pred) label pair), so the cost is linear in the number of items even for
streams of tens of thousands of events, where enumerating pairs would be quadratic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

__all__ = ["adjusted_rand_index", "format_table", "grouping_accuracy", "pairwise_scores"]


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
    cells, truth_sizes, pred_sizes = _tables(truth, pred)
    both = sum(_pairs(c) for c in cells.values())
    pred_pairs = sum(_pairs(c) for c in pred_sizes.values())
    truth_pairs = sum(_pairs(c) for c in truth_sizes.values())
    precision = both / pred_pairs if pred_pairs else 1.0
    recall = both / truth_pairs if truth_pairs else 1.0
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


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """An aligned plain-text table: ``columns`` are (row key, header, format spec), with
    ``"s"`` for text (left-aligned); everything else is a number (right-aligned), ``None``
    shown as "-"."""
    headers = [header for _, header, _ in columns]
    cells = [["-" if row[key] is None else format(row[key], fmt) if fmt != "s" else str(row[key])
              for key, _, fmt in columns] for row in rows]
    widths = [max([len(h), *(len(r[c]) for r in cells)]) for c, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) if fmt == "s" else v.rjust(w)
                         for v, w, (_, _, fmt) in zip(values, widths, columns, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])
