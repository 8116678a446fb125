"""Responders' merges and splits, read back as grouping labels.

A merge or a split (``triage.services.corrections``) is recorded in ``feedback`` with the
events it moved: a merge, per incident merged away, the events that incident held; a
split, the events it moved off. The memberships then hold the responders' grouping (each
event's incident *now*); undoing the corrections newest first (a merge's events back to
the incidents they came from, a split's back to the incident they were split off) gives
the grouping triage decided. The two, over the events of every incident a correction
touched, are what ``GET /stats/quality`` and the what-if score triage's grouping with
(docs/architecture.md, "Grouping quality from merges and splits").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa

from triage.store import schema as t
from triage.store.feedback import feedback
from triage.store.engine import chunks, in_window

__all__ = ["Correction", "CorrectionKind", "GroupingLabels", "LabeledEvent", "corrected_incidents",
           "current_holders", "grouping_labels", "load_corrections"]


class CorrectionKind(Enum):
    merge = "triage.merge"
    split = "triage.split"


@dataclass(frozen=True)
class Correction:
    id: str
    kind: CorrectionKind
    at: datetime
    actor: str | None
    incidents: tuple[str, ...]              # every incident it names: target and sources; source and new
    moves: dict[str, tuple[str, ...]]       # incident the events were in before -> the events it moved out
    complete: bool                          # its moved events are recorded (merges before they were are not)


@dataclass(frozen=True)
class LabeledEvent:
    event_id: str
    occurred_at: datetime
    responders: str         # its incident now, after every correction
    triage: str             # the incident triage put it in (the corrections undone)
    parameters_version: int


@dataclass(frozen=True)
class GroupingLabels:
    events: list[LabeledEvent]           # in (occurred_at, event id) order
    corrections: list[Correction]        # the complete ones that moved an event of ``events``
    incomplete: list[Correction]         # left out: recorded without the events they moved


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _correction(row: Any) -> Correction:
    doc = row.document if isinstance(row.document, dict) else {}
    kind = CorrectionKind(row.event_type)
    if kind is CorrectionKind.merge:
        into, merged = str(doc.get("into") or row.incident_id), _strings(doc.get("merged"))
        events = doc.get("events")
        moves = {str(k): _strings(v) for k, v in events.items()} if isinstance(events, dict) else {}
        return Correction(row.id, kind, row.occurred_at, row.actor, (into, *merged), moves,
                          complete=isinstance(events, dict) and set(moves) == set(merged))
    source, into = str(doc.get("from") or row.incident_id), str(doc.get("into") or "")
    moved = _strings(doc.get("events"))
    return Correction(row.id, kind, row.occurred_at, row.actor, (source, into) if into else (source,),
                      {source: moved}, complete=bool(into and moved))


def load_corrections(conn: sa.Connection) -> list[Correction]:
    """Every merge and split, oldest first."""
    f = feedback
    rows = conn.execute(sa.select(f.c.id, f.c.event_type, f.c.occurred_at, f.c.actor, f.c.incident_id, f.c.document)
                        .where(f.c.event_type.in_([k.value for k in CorrectionKind]))
                        .order_by(f.c.occurred_at, f.c.id))
    return [_correction(r) for r in rows]


def current_holders(conn: sa.Connection, incident_ids: Iterable[str]) -> dict[str, str]:
    """Each incident id -> the incident that holds its events now: itself, or the end of
    its ``merged_into`` chain (an unknown id maps to itself)."""
    parent: dict[str, str | None] = {}
    todo = set(incident_ids)
    while todo:
        asked = sorted(todo)
        todo = set()
        for chunk in chunks(asked):
            for r in conn.execute(sa.select(t.incidents.c.id, t.incidents.c.merged_into)
                                  .where(t.incidents.c.id.in_(chunk))):
                parent[r.id] = r.merged_into
                if r.merged_into and r.merged_into not in parent:
                    todo.add(r.merged_into)
        for i in asked:
            parent.setdefault(i, None)
    out: dict[str, str] = {}
    for start in parent:
        node, seen = start, {start}
        while (nxt := parent.get(node)) and nxt not in seen:   # a cycle cannot be written; never loop
            seen.add(nxt)
            node = nxt
        out[start] = node
    return out


def _labeled_incidents(conn: sa.Connection, corrections: list[Correction]) -> set[str]:
    """The incidents holding, now, the events of every incident a recorded correction
    touched, less those a correction recorded without its events touched."""
    holders = current_holders(conn, {i for c in corrections for i in c.incidents})
    unknowable = {holders[i] for c in corrections if not c.complete for i in c.incidents}
    return {holders[i] for c in corrections if c.complete for i in c.incidents} - unknowable


def corrected_incidents(conn: sa.Connection) -> set[str]:
    """The incidents whose events are labeled by responders' merges and splits: their
    grouping now is the responders' (``grouping_labels``)."""
    corrections = load_corrections(conn)
    return _labeled_incidents(conn, corrections) if corrections else set()


def grouping_labels(engine: sa.Engine, since: datetime | None = None, until: datetime | None = None) -> GroupingLabels:
    """The events (that occurred in [since, until)) of every incident a merge or split
    touched, each with its incident now and the incident triage had put it in. An
    incident a correction recorded without its events touched is left out whole: its
    events' original incidents cannot be told."""
    m, e = t.memberships, t.events
    with engine.connect() as conn:
        corrections = load_corrections(conn)
        if not corrections:
            return GroupingLabels([], [], [])
        complete = [c for c in corrections if c.complete]
        incomplete = [c for c in corrections if not c.complete]
        wanted = sorted(_labeled_incidents(conn, corrections))
        cond = in_window(e.c.occurred_at, since, until)
        rows: list[tuple[str, datetime, str, int]] = []
        for chunk in chunks(wanted):
            rows.extend((r.event_id, r.occurred_at, r.incident_id, r.parameters_version) for r in conn.execute(
                sa.select(m.c.event_id, e.c.occurred_at, m.c.incident_id, m.c.parameters_version)
                .select_from(m.join(e, e.c.id == m.c.event_id))
                .where(m.c.incident_id.in_(chunk), *cond)))
    triage = {event_id: incident for event_id, _, incident, _ in rows}
    used: list[Correction] = []
    for correction in reversed(complete):   # newest first: each undone on the grouping it left
        moved = False
        for source, events in correction.moves.items():
            for event_id in events:
                if event_id in triage:
                    triage[event_id] = source
                    moved = True
        if moved:
            used.append(correction)
    rows.sort(key=lambda r: (r[1], r[0]))
    return GroupingLabels(
        events=[LabeledEvent(event_id, at, incident, triage[event_id], version)
                for event_id, at, incident, version in rows],
        corrections=used[::-1], incomplete=incomplete)
