"""``triage whatif``: what candidate parameter values would have done to a stored window,
as a table for people (the same replay as ``POST /models/parameters/preview``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from triage.evaluation.metrics import format_table
from triage.services.quality import Scores
from triage.services.whatif import Regrouped, WhatIf

__all__ = ["default_window", "format_whatif", "parse_assignments", "parse_time"]


def parse_assignments(pairs: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs; a value is read as JSON (0.6, true, 300) and else kept as text,
    for the parameters' own validation to judge."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set {pair!r}: expected name=value, e.g. --set threshold=0.6")
        try:
            values[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            values[name.strip()] = text
    return values


def parse_time(text: str) -> datetime:
    """RFC 3339 / ISO 8601; a time without a zone, or a bare date, is taken as UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _scores(s: Scores | None, name: str) -> Any:
    return None if s is None else getattr(s, name)


_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("pages", "pages", "d"),
    ("pages_due", "pages and updates due", "d"),
    ("noise_pages", "noise pages", "d"),
    ("incidents", "incidents", "d"),
    ("noise_groups", "noise groups", "d"),
    ("transient_incidents", "held back (auto_pause)", "d"),
    ("compression", "compression", ".4f"),
)
_FEEDBACK: tuple[tuple[str, str, str], ...] = (
    ("precision", "precision vs responders", ".3f"),
    ("recall", "recall vs responders", ".3f"),
    ("bcubed_precision", "B-cubed precision", ".3f"),
    ("bcubed_recall", "B-cubed recall", ".3f"),
)


def _row(label: str, now: Any, then: Any, fmt: str) -> dict[str, Any]:
    change = None if now is None or then is None else then - now
    return {"figure": label, "now": now, "then": then, "change": change, "fmt": fmt}


def _regrouped(items: list[Regrouped], total: int, verb: str, limit: int) -> list[str]:
    if not total:
        return [f"nothing would {verb}"]
    lines = [f"{total} group(s) would {verb}" + (f"; the {limit} with most events:" if total > limit else ":")]
    for r in items[:limit]:
        lines.append(f"  {r.events:>7} events  {' + '.join(r.current)}  ->  {' + '.join(r.candidate)}"
                     + (f"  (stored: {', '.join(r.stored)})" if r.stored and set(r.stored) != set(r.current) else ""))
    return lines


def format_whatif(result: WhatIf, version: int, *, limit: int = 10) -> str:
    """The figures of both replays side by side, then the regroupings."""
    now, then = result.current, result.candidate
    before, after = now.parameters.model_dump(mode="json"), then.parameters.model_dump(mode="json")
    changed = ", ".join(f"{k} {before[k]} -> {after[k]}" for k in before if before[k] != after[k]) or "none"
    rows = [_row(label, getattr(now, key), getattr(then, key), fmt) for key, label, fmt in _FIGURES]
    if now.feedback is not None or then.feedback is not None:
        rows += [_row(label, _scores(now.feedback, key), _scores(then.feedback, key), fmt)
                 for key, label, fmt in _FEEDBACK]
    # One format per row: render the numbers first, then align them as text.
    cells = [{"figure": r["figure"], "now": _fmt(r["now"], r["fmt"]), "then": _fmt(r["then"], r["fmt"]),
              "change": _fmt(r["change"], r["fmt"], signed=True)} for r in rows]
    table = format_table(cells, (("figure", "", "s"), ("now", f"in force (v{version})", ">"),
                                 ("then", "candidate", ">"), ("change", "change", ">")))
    seconds = max(result.seconds, 1e-9)
    lines = [
        f"window {result.since.isoformat()} .. {result.until.isoformat()}: {result.events:,} events "
        f"replayed twice in {result.seconds:.1f} s ({result.events / seconds:,.0f} events/s), "
        f"{result.embedded} template(s) embedded (set-up {result.setup_seconds:.1f} s)",
        f"candidate: {changed}",
        f"noise pages: pages of groups whose alerts all resolved within {result.transient_s:g} s of firing",
        "", table, "",
        *_regrouped(result.merges, result.merges_total, "merge", limit),
        *_regrouped(result.splits, result.splits_total, "split", limit),
    ]
    if result.feedback_events:
        lines.append(f"precision and recall against responders: over {result.feedback_events:,} events of "
                     "incidents they merged or split")
    else:
        lines.append("no incident of the window was merged or split by a responder: no precision or recall")
    return "\n".join(lines)


def _fmt(value: Any, fmt: str, signed: bool = False) -> str:
    if value is None:
        return "-"
    if signed and fmt != "d" and abs(value) < 5e-5:
        return "0"
    return format(value, ("+" if signed else "") + (",d" if fmt == "d" else fmt))


def default_window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """Until now, and the 24 hours before ``until``, when not given."""
    end = until or datetime.now(timezone.utc)
    return since or end - timedelta(days=1), end
