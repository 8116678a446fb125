"""Why an incident's first page waits, and what a scope remembers of its alert families.

Two kinds of hold, each stated in the decision's evidence (``Hold``, ``Release``) and
explained by ``explain()``:

* **auto-pause** (``HoldKind.auto_pause``): PagerDuty's transient-alert pause. The first
  page waits ``auto_pause`` seconds; if every alert resolves before, the incident is
  transient and pages nobody.
* **damping** (``HoldKind.chronic`` / ``HoldKind.flapping``): the alert that opened the
  incident belongs to a *family* (the same template on the same service or host) whose
  episodes fire and clear *on their own*, again and again (``AlertHistory``): at least
  two of its episodes that outlasted their pause, and most of them, were *alone* (nothing
  but the family's own alert joined them)
  — a nightly disk fill, a certificate warning every morning, a check that flaps. A
  family whose episodes came with other alerts, logs or spans is a symptom of real
  incidents and is not damped. The family paged the first times; this episode pages
  nobody until it changes (``Release``): a firing alert of higher severity joins it, or
  an event on another service or host, or an event of another template (a log, a span,
  another alert: an incident joining the episode), or more alert events than any lone
  episode of the family had (``Change.alerts``). And the hold *expires* (``Hold.until``):
  an episode still open when it has outlasted the family's longest lone episode by its
  pause (``auto_pause``) is not behaving as the family does and pages then, so damping
  never holds a lasting problem forever. A critical alert is never damped. ``flapping`` when its last
  episode began within ``max_incident_age``, else ``chronic``.

``AlertHistory`` is per correlation scope and travels with the scope's learned models
(the store's ``correlation_models.alert_history``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from triage.domain.event import Severity

__all__ = ["AlertHistory", "Change", "FamilyRecord", "Hold", "HoldKind", "Release"]


class HoldKind(StrEnum):
    auto_pause = "auto_pause"   # held for auto_pause: pages then unless all its alerts resolved
    chronic = "chronic"         # its family fires and clears again and again, days apart
    flapping = "flapping"       # ... within hours


class Change(StrEnum):
    """What ended a damped incident's silence."""

    severity = "severity"       # a firing alert more severe than the family has been
    service = "service"         # a firing alert on another service or host
    event = "event"             # an event of another template: another incident joins the episode
    alerts = "alerts"           # more alert events than any lone episode of the family had


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Hold:
    """Why the first page of the incident a decision opened (or promoted) waits."""

    kind: HoldKind
    # auto-pause: when the page falls due; damped: when the hold expires (the family's
    # longest lone episode plus its pause) unless it changes before
    until: datetime | None
    # The family of the alert that opened the incident, "<service or host:name>|<template id>",
    # and its history then (what the page's urgency reads as novelty); None when the hold
    # began later (a transient incident re-firing).
    family: str | None = None
    title: str | None = None            # the family's alert title (damped: when it first fired)
    episodes: int = 0                   # the family's earlier episodes (incidents it opened)
    sustained: int = 0                  # ... of which outlasted their pause
    first_seen: datetime | None = None  # ... the first of them
    last_episode_at: datetime | None = None
    alone: int = 0                      # damped: the sustained episodes nothing else joined
    longest_s: float = 0.0              # ... the longest of them, open to resolve
    most_alerts: int = 0                # ... the most alert events (firing and resolved) one had

    @property
    def damped(self) -> bool:
        return self.kind is not HoldKind.auto_pause

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": str(self.kind)}
        if self.until is not None:
            out["until"] = self.until.isoformat()
        if self.family is not None:
            out.update(family=self.family, title=self.title, episodes=self.episodes, sustained=self.sustained)
        if self.damped:
            out.update(first_seen=_iso(self.first_seen), last_episode_at=_iso(self.last_episode_at),
                       alone=self.alone, longest_s=self.longest_s, most_alerts=self.most_alerts)
        return out

    @classmethod
    def from_json(cls, data: Any) -> Hold | None:
        """Tolerant: None for anything that is not a hold this version wrote."""
        if not isinstance(data, dict):
            return None
        try:
            kind = HoldKind(str(data.get("kind")))
        except ValueError:
            return None
        family, title = data.get("family"), data.get("title")
        return cls(kind=kind, until=_at(data.get("until")), family=family if isinstance(family, str) else None,
                   title=title if isinstance(title, str) else None, episodes=_int(data.get("episodes")),
                   sustained=_int(data.get("sustained")), first_seen=_at(data.get("first_seen")),
                   last_episode_at=_at(data.get("last_episode_at")), alone=_int(data.get("alone")),
                   longest_s=_float(data.get("longest_s")), most_alerts=_int(data.get("most_alerts")))


@dataclass(frozen=True, slots=True)
class Release:
    """A damped incident changed: its first page is due now (or when its pause ends)."""

    change: Change
    detail: str                         # the new severity, service or alert title
    family: str                         # the damped family

    def as_json(self) -> dict[str, str]:
        return {"change": str(self.change), "detail": self.detail, "family": self.family}

    @classmethod
    def from_json(cls, data: Any) -> Release | None:
        if not isinstance(data, dict):
            return None
        try:
            change = Change(str(data.get("change")))
        except ValueError:
            return None
        return cls(change=change, detail=str(data.get("detail", "")), family=str(data.get("family", "")))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


@dataclass
class FamilyRecord:
    """One alert family's episodes in a scope: how often it opened an incident, how
    often such an incident outlasted its pause (``sustained``), the worst severity of
    those, and when (epoch seconds); of the sustained ones, how many were *alone*
    (nothing but the family's own alert joined them), the longest of those (seconds, open
    to resolve) and the most alert events one had."""

    title: str
    episodes: int = 0
    sustained: int = 0
    severity: Severity = Severity.debug
    first_seen: float = 0.0
    last_episode_at: float = 0.0
    alone: int = 0
    longest_s: float = 0.0
    most_alerts: int = 0

    @property
    def fires_alone(self) -> bool:
        """Two or more of its sustained episodes, and most of them, came alone: chronic or
        flapping, not a real incident's symptom."""
        return self.alone > 1 and 2 * self.alone > self.sustained

    def snapshot(self) -> list[Any]:
        return [self.title, self.episodes, self.sustained, self.severity.value, self.first_seen,
                self.last_episode_at, self.alone, self.longest_s, self.most_alerts]

    @classmethod
    def from_snapshot(cls, row: Any) -> FamilyRecord | None:
        """Tolerant: a row of the first format (six values, no lone episodes) reads as a
        family with none, which damping relearns."""
        if not isinstance(row, list) or len(row) not in (6, 9):
            return None
        title, episodes, sustained, severity, first_seen, last = row[:6]
        alone, longest, most = row[6:] if len(row) == 9 else (0, 0.0, 0)
        try:
            return cls(str(title), int(episodes), int(sustained), Severity(severity), float(first_seen), float(last),
                       int(alone), float(longest), int(most))
        except (TypeError, ValueError):
            return None


@dataclass
class AlertHistory:
    """A scope's alert families (family key -> ``FamilyRecord``), kept ``chronic_window``
    past their last episode."""

    families: dict[str, FamilyRecord] = field(default_factory=dict)
    dirty: bool = False

    def opened(self, family: str, title: str, at: datetime) -> None:
        """A firing alert of ``family`` opened an incident (one more episode)."""
        ts = at.timestamp()
        record = self.families.get(family)
        if record is None:
            record = self.families[family] = FamilyRecord(title=title, first_seen=ts)
        record.episodes += 1
        record.last_episode_at = max(record.last_episode_at, ts)
        self.dirty = True

    def sustained(self, family: str, severity: Severity, *, alone: bool, lasted_s: float, alerts: int) -> None:
        """An incident ``family`` opened resolved after its pause was over (it paged, or
        would have but for damping), ``lasted_s`` after it opened, with ``alerts`` alert
        events; ``alone``: nothing but the family's own alert joined it."""
        record = self.families.get(family)
        if record is None:
            return
        record.sustained += 1
        if severity.rank > record.severity.rank:
            record.severity = severity
        if alone:
            record.alone += 1
            record.longest_s = max(record.longest_s, lasted_s)
            record.most_alerts = max(record.most_alerts, alerts)
        self.dirty = True

    def prune(self, now: datetime, horizon_s: float) -> None:
        """Forget families whose last episode began more than ``horizon_s`` before ``now``."""
        cutoff = now.timestamp() - horizon_s
        stale = [k for k, r in self.families.items() if r.last_episode_at < cutoff]
        for key in stale:
            del self.families[key]
        if stale:
            self.dirty = True

    def snapshot(self) -> dict[str, Any]:
        return {"format": 2, "families": {k: r.snapshot() for k, r in sorted(self.families.items())}}

    @classmethod
    def from_snapshot(cls, data: Any) -> AlertHistory:
        """Tolerant: an absent or unreadable snapshot is an empty history."""
        history = cls()
        if isinstance(data, dict) and isinstance(data.get("families"), dict):
            for key, row in data["families"].items():
                record = FamilyRecord.from_snapshot(row)
                if record is not None:
                    history.families[str(key)] = record
        return history
