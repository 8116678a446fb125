"""The scores of ``triage eval``: the clustering scores (``triage.models.grouping_metrics``,
where the service's quality statistics use them too, re-exported here) and the paging
scores of the alert evaluation.

The paging scores (``page_scores``) measure what the person with the pager feels:
pages per real incident, pages shared by incidents, pages for noise, time to page.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from triage.models.grouping_metrics import (
    adjusted_rand_index,
    bcubed_scores,
    grouping_accuracy,
    pairwise_scores,
)

__all__ = ["Page", "PageScores", "adjusted_rand_index", "bcubed_scores", "format_table", "grouping_accuracy",
           "page_scores", "pairwise_scores", "percentile"]


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
