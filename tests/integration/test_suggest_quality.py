"""Guard of ``triage eval suggest``'s figures on both labeled data sets (simulated; see
../shared/data/README.md), with the real sentence model: probable cause, owner team,
responders, remediations and similar incidents, each next to its no-model baseline.

The floors sit a little below what was measured on 2026-12-07 (docs/quality.md,
"Triage: probable cause, owner, responders, remediations, similar incidents"), so a change
that makes any of them worse fails here. The figures are deterministic: the replay,
the correlator and the models read no clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EMBEDDER, skip_or_fail
from triage.evaluation.suggestions import evaluate_suggestions

pytestmark = pytest.mark.integration

ALERTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "alerts"

# data set -> key -> floor (measured 2026-12-07, minus about 0.03; see the module's docstring)
FLOORS: dict[str, dict[str, float]] = {
    "boutique-week": {"probable_cause_top1": 0.89, "probable_cause_top3": 0.96, "team_at_1": 0.91,
                      "person_at_1": 0.67, "person_at_3": 0.82, "remediation_at_3": 0.88,
                      "similar_recall_at_5": 0.86},
    "boutique-storm": {"probable_cause_top1": 0.85, "probable_cause_top3": 0.94, "team_at_1": 0.91,
                       "person_at_1": 0.55, "person_at_3": 0.79},
}


@pytest.fixture(scope="module")
def rows() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for name in FLOORS:
        directory = ALERTS / name
        if not (directory / "incidents.jsonl").is_file():
            skip_or_fail(f"labeled alert data set not found at {directory} (shared/data is not part of this checkout)")
        out.update({(name, r["engine"]): r for r in evaluate_suggestions(directory, embedder=EMBEDDER)})
    return out


@pytest.mark.parametrize("dataset", sorted(FLOORS))
def test_triage_figures_stay_above_their_floors(rows: dict[tuple[str, str], dict[str, Any]], dataset: str) -> None:
    row = rows[(dataset, "triage")]
    below = {key: (row[key], floor) for key, floor in FLOORS[dataset].items() if row[key] is None or row[key] < floor}
    assert not below, f"{dataset}: (figure, floor) {below}"


@pytest.mark.parametrize("dataset", sorted(FLOORS))
def test_triage_beats_each_baseline_on_what_it_answers(rows: dict[tuple[str, str], dict[str, Any]],
                                                       dataset: str) -> None:
    triage = rows[(dataset, "triage")]
    owner, frequent, latest = (rows[(dataset, e)] for e in ("catalog-owner", "most-frequent", "latest-same-services"))
    assert triage["incidents"] == owner["incidents"] > 10
    assert triage["probable_cause_top3"] > owner["probable_cause_top3"]
    assert triage["probable_cause_top1"] >= owner["probable_cause_top1"]
    assert triage["person_at_3"] > max(owner["person_at_3"], frequent["person_at_3"])
    assert triage["person_at_1"] >= max(owner["person_at_1"], frequent["person_at_1"])
    if latest["remediation_at_3"] is not None:
        assert triage["remediation_at_3"] > latest["remediation_at_3"]
        assert triage["similar_recall_at_5"] > latest["similar_recall_at_5"]
