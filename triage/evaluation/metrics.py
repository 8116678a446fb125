"""Clustering scores shared by every grouping evaluation (log templates, alert groups),
and the paging scores of the alert evaluation.

The clustering scores work on two parallel label sequences, one label per item: the
ground-truth group and the predicted group. Labels only need to be hashable and
are compared within one sequence, never across the two, so the predicted labels
may be any ids (cluster numbers, template hashes, incident ids).

Everything is computed from the contingency table (how many items carry each
(truth, pred) label pair), so the cost is linear in the number of items even for
streams of tens of thousands of events, where enumerating pairs would be quadratic.

The paging scores (``page_scores``) measure what the person with the pager feels:
pages per real incident, pages shared by incidents, pages for noise, time to page.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Page", "PageScores", "adjusted_rand_index", "bcubed_scores", "format_table", "grouping_accuracy",
           "page_scores", "pairwise_scores", "percentile"]


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


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q <= 100): the smallest value with at
    least q % of the values at or below it, so always one that occurred (p95 of 20
    incidents is the 19th fastest). None for no values."""
    if not 0 < q <= 100:
        raise ValueError(f"q must be in (0, 100], got {q!r}")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Page:
    """One page an engine sent: when, and the true labels of the firing alerts its group holds."""

    at: float                     # seconds, on the same clock as the incidents' first alerts
    holds: frozenset[Hashable]    # truth labels of the firing alerts in the page's group


@dataclass(frozen=True)
class PageScores:
    pages: int
    incidents: int                     # real incidents with a firing alert
    exact: float                       # share paged exactly once, by a page of theirs alone
    pages_per_incident: float
    missed: int                        # real incidents no page belongs to
    time_to_page_p50_s: float | None   # first firing alert -> first page, over paged incidents
    time_to_page_p95_s: float | None
    noise_pages: int                   # pages whose firing alerts are all noise


def page_scores(pages: Sequence[Page], incidents: Mapping[Hashable, float]) -> PageScores:
    """How pages meet real incidents.

    ``incidents``: each real incident that has a firing alert, with the time of its first
    firing alert; every other label a page holds is noise. A page *belongs* to each real
    incident whose firing alerts its group holds. Per real incident: ``exact`` when
    exactly one page belongs to it and that page holds no other real incident (noise
    alongside is allowed); ``missed`` when none does; its time to page runs from its
    first firing alert to the first page belonging to it, and is 0 when that page went
    out before its first alert (its alerts joined a group already paged). A page that
    holds no real incident's alert is a noise page. With no real incidents, ``exact`` and
    ``pages_per_incident`` are 1.0 and 0.0 (nothing to get wrong, nothing paged for)."""
    belonging: dict[Hashable, list[Page]] = {incident: [] for incident in incidents}
    noise = 0
    for page in pages:
        real = [label for label in page.holds if label in belonging]
        if not real:
            noise += 1
        for label in real:
            belonging[label].append(page)
    exact = missed = 0
    delays: list[float] = []
    for incident, theirs in belonging.items():
        if not theirs:
            missed += 1
            continue
        if len(theirs) == 1 and all(label == incident or label not in belonging for label in theirs[0].holds):
            exact += 1
        delays.append(max(0.0, min(p.at for p in theirs) - incidents[incident]))
    count = len(belonging)
    return PageScores(
        pages=len(pages), incidents=count,
        exact=exact / count if count else 1.0,
        pages_per_incident=sum(len(v) for v in belonging.values()) / count if count else 0.0,
        missed=missed,
        time_to_page_p50_s=percentile(delays, 50), time_to_page_p95_s=percentile(delays, 95),
        noise_pages=noise)


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
