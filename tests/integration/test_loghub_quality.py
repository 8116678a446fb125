"""Template mining quality on the labeled loghub-2k sample: triage must beat Drain3.

The data lives outside the repository (``shared/data/loghub-2k`` next to it, see
``shared/data/README.md``). Developers without it get a skip; CI must have it, so
there a missing directory fails instead of silently passing.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import skip_or_fail
from triage.evaluation.loghub import evaluate_logs, format_logs_table

LOGHUB_2K = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "loghub-2k"


def test_triage_groups_loghub_better_than_drain3() -> None:
    if not LOGHUB_2K.is_dir():
        skip_or_fail(f"loghub-2k data not found at {LOGHUB_2K} (see shared/data/README.md)")

    rows = evaluate_logs(LOGHUB_2K)
    mean = rows[-1]
    assert mean["system"] == "mean" and len(rows) > 1
    table = format_logs_table(rows)
    print(table)  # shown with -s or on failure: the per-system numbers behind the means
    assert mean["ga_triage"] > mean["ga_drain3"], table
