"""Log template mining quality on loghub-2k style data: triage's miner next to Drain3.

Input format (logpai/loghub 2k samples, logpai/logparser's ``loghub_2k`` and
``loghub_2k_corrected`` folders): one ``<System>_2k.log_structured[_corrected].csv``
per system with at least the columns ``Content`` (the message a miner sees) and
``EventId`` (the ground-truth template). Each system gets a fresh miner fed the
``Content`` values in file order, and the id returned for a line is its group, as
in the Drain benchmark; grouping accuracy and pairwise F1 come from
``triage.evaluation.metrics``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from triage.correlation.templates import TemplateMiner
from triage.evaluation.metrics import grouping_accuracy, pairwise_scores

__all__ = [
    "evaluate_logs", "format_logs_table", "grouping_accuracy", "load_loghub",
    "pairwise_scores", "run_drain3", "run_triage",
]

_STRUCTURED = re.compile(r"^(?P<system>.+)_2k\.log_structured(?P<corrected>_corrected)?\.csv$")
_REQUIRED = ("Content", "EventId")


def _find_structured(root: Path) -> dict[str, Path]:
    """One structured CSV per system under ``root``.

    logparser ships the original and the corrected labels side by side (in one
    folder or in sibling trees), so several files can name one system: the
    corrected labels win, then the shallowest path, then the path's text, which
    keeps the choice deterministic on any layout instead of failing on it.
    """
    best: dict[str, tuple[tuple[int, int, str], Path]] = {}
    for path in root.rglob("*_2k.log_structured*.csv"):
        found = _STRUCTURED.match(path.name)
        if found is None or not path.is_file():
            continue
        rank = (0 if found["corrected"] else 1, len(path.relative_to(root).parts), str(path))
        system = found["system"]
        if system not in best or rank < best[system][0]:
            best[system] = (rank, path)
    return {system: best[system][1] for system in sorted(best)}


def _read_structured(path: Path) -> list[tuple[str, str]]:
    # utf-8-sig: a CSV saved by a spreadsheet starts with a BOM that would otherwise
    # become part of the first column's name.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        return [(row["Content"] or "", row["EventId"] or "") for row in reader]


def load_loghub(dir: Path) -> dict[str, list[tuple[str, str]]]:
    """``{system: [(content, event_id), ...]}`` for every structured CSV under ``dir``.

    Searches recursively, in file order within each system; systems are sorted by
    name. Raises ``FileNotFoundError`` when ``dir`` is not a directory.
    """
    root = Path(dir)
    if not root.is_dir():
        raise FileNotFoundError(f"not a directory: {root}")
    return {system: _read_structured(path) for system, path in _find_structured(root).items()}


def run_triage(contents: Sequence[str]) -> list[str]:
    """The template each line belongs to once the whole sequence has been learned.

    Lines are learned one by one in order; a line's group is the template its id
    resolves to at the end, i.e. after the merges that later lines caused. This is
    how the Drain benchmark reads groups too (a line's cluster after the last line;
    Drain never merges, so for it that is also the id it got when learned).
    """
    miner = TemplateMiner()
    assigned = [miner.add(content).template_id for content in contents]
    return [miner.resolve(template_id) for template_id in assigned]


def run_drain3(contents: Sequence[str]) -> list[str]:
    """The cluster id Drain3 with its out-of-the-box settings assigns each line."""
    # Imported here: drain3 is only the baseline, not something triage runs on.
    from drain3 import TemplateMiner as Drain3Miner
    from drain3.template_miner_config import TemplateMinerConfig

    # An explicit config: without one Drain3 reads a drain3.ini from the working
    # directory, which would make the baseline depend on where this runs.
    miner = Drain3Miner(config=TemplateMinerConfig())
    return [str(miner.add_log_message(content)["cluster_id"]) for content in contents]


def evaluate_logs(dir: Path) -> list[dict[str, Any]]:
    """Per-system GA and pairwise F1 of triage and Drain3 defaults, then a "mean" row.

    Each row has ``system, lines, ga_triage, f1_triage, ga_drain3, f1_drain3``. The
    mean row is the unweighted mean over systems (as the literature reports it) and
    its ``lines`` is the total. Raises ``ValueError`` when ``dir`` holds no data.
    """
    data = load_loghub(dir)
    if not data:
        raise ValueError(f"no *_2k.log_structured*.csv files under {dir}")
    rows: list[dict[str, Any]] = []
    for system, lines in data.items():
        contents = [content for content, _ in lines]
        truth = [event_id for _, event_id in lines]
        ours = run_triage(contents)
        theirs = run_drain3(contents)
        rows.append({
            "system": system,
            "lines": len(lines),
            "ga_triage": grouping_accuracy(truth, ours),
            "f1_triage": pairwise_scores(truth, ours)[2],
            "ga_drain3": grouping_accuracy(truth, theirs),
            "f1_drain3": pairwise_scores(truth, theirs)[2],
        })
    mean: dict[str, Any] = {"system": "mean", "lines": sum(r["lines"] for r in rows)}
    for key in ("ga_triage", "f1_triage", "ga_drain3", "f1_drain3"):
        mean[key] = sum(r[key] for r in rows) / len(rows)
    rows.append(mean)
    return rows


def format_logs_table(rows: Sequence[dict[str, Any]]) -> str:
    """A fixed-width text table of ``evaluate_logs`` rows, one line per row."""
    header = ("system", "lines", "GA triage", "F1 triage", "GA drain3", "F1 drain3")
    keys = ("ga_triage", "f1_triage", "ga_drain3", "f1_drain3")
    body = [(str(r["system"]), str(r["lines"]), *(f"{r[k]:.3f}" for k in keys)) for r in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:]))
        return "  ".join((first, *rest))

    out = [line(header), "  ".join("-" * w for w in widths)]
    for cells in body:
        if cells[0] == "mean":
            out.append("  ".join("-" * w for w in widths))
        out.append(line(cells))
    return "\n".join(out)
