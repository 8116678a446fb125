"""What the on-call figures are computed from: the incidents opened in a window, their
first alert and their pages (the decisions), and what responders did about them (the
``feedback`` table: PagerDuty v3 webhooks, and triage's own feedback API)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from triage.correlation.state import IncidentKind
from triage.store import schema as t
from triage.store.feedback import API_RESOLUTION, RESOLVING, _by_a_person, feedback
from triage.store.grouping_labels import CorrectionKind, current_holders
from triage.store.engine import chunks, in_window

__all__ = ["IncidentFacts", "PageFact", "incident_facts"]

ACKNOWLEDGED = "incident.acknowledged"
# PagerDuty events whose ``assignees`` are the people it paged.
ASSIGNING = frozenset({"incident.triggered", "incident.escalated", "incident.reassigned", "incident.delegated"})
CORRECTING = frozenset(k.value for k in CorrectionKind)


@dataclass(frozen=True)
class PageFact:
    at: datetime                 # the deciding event's time: when the page (or its update) fell due
    rule: str                    # the alert rule that made it due: its ``alertname``, else its title


@dataclass
class IncidentFacts:
    id: str
    opened_at: datetime          # its first event, of any kind
    transient: bool              # auto_pause held its first page and its alerts resolved first: never paged
    held: bool                   # its first page is still held by auto_pause
    service: str | None = None   # the service of its first firing alert (else of its first event)
    rule: str | None = None      # the alert rule of its first firing alert
    alert_template: str | None = None   # that alert's template id (alert families)
    first_alert: datetime | None = None
    pages: list[PageFact] = field(default_factory=list)
    acknowledged_at: datetime | None = None   # first acknowledgement by a person, else a person's resolve
    resolved_at: datetime | None = None       # first resolve: PagerDuty's (by anyone), or triage's feedback API
    paged_person: str | None = None   # whom PagerDuty paged: the first assignee it names
    responder: str | None = None      # the first person to acknowledge (else resolve) it
    acted_on: bool = False       # a person acknowledged, resolved, merged or split it
    any_feedback: bool = False   # anything at all came back about it

    @property
    def person(self) -> str | None:
        """The on-call person the pages went to: PagerDuty's assignee, else whoever answered."""
        return self.paged_person or self.responder

    @property
    def first_page(self) -> datetime | None:
        return min((p.at for p in self.pages), default=None)


def _rule(document: Any, title: str) -> str:
    labels = document.get("labels") if isinstance(document, dict) else None
    name = labels.get("alertname") if isinstance(labels, dict) else None
    return str(name) if isinstance(name, str) and name else title


def _person_of(ref: Any) -> str | None:
    if not isinstance(ref, dict):
        return None
    value = ref.get("email") or ref.get("name")
    return str(value) if value else None


def incident_facts(engine: sa.Engine, since: datetime | None, until: datetime | None) -> list[IncidentFacts]:
    """Every incident (not a noise group, not merged away: its events, pages and feedback
    count in the incident it was merged into) opened in [since, until), oldest first."""
    i, m, e = t.incidents, t.memberships, t.events
    cond = [i.c.kind == IncidentKind.incident, i.c.merged_into.is_(None), *in_window(i.c.opened_at, since, until)]
    with engine.connect() as conn:
        facts = {r.id: IncidentFacts(r.id, r.opened_at, bool(r.transient),
                                     held=r.page_due_at is not None and r.last_notified_at is None
                                     and not r.transient and r.status == "open",
                                     service=(r.services or [None])[0])
                 for r in conn.execute(sa.select(i.c.id, i.c.opened_at, i.c.transient, i.c.page_due_at,
                                                 i.c.last_notified_at, i.c.status, i.c.services)
                                       .where(*cond).order_by(i.c.opened_at, i.c.id))}
        ids = sorted(facts)
        for chunk in chunks(ids):
            # The first firing alert of each incident: its decisions that were not duplicates.
            for r in conn.execute(
                    sa.select(m.c.incident_id, e.c.occurred_at, e.c.id, e.c.service, e.c.host, e.c.title,
                              e.c.document, m.c.template_id)
                    .select_from(m.join(e, e.c.id == m.c.event_id))
                    .where(m.c.incident_id.in_(chunk), e.c.kind == "alert", e.c.status == "firing",
                           m.c.action != "suppressed")):
                fact = facts[r.incident_id]
                if fact.first_alert is None or r.occurred_at < fact.first_alert:
                    fact.first_alert, fact.rule, fact.alert_template = r.occurred_at, _rule(r.document, r.title), \
                        r.template_id
                    fact.service = r.service or (f"host:{r.host}" if r.host else fact.service)
            for page in conn.execute(
                    sa.select(m.c.incident_id, e.c.occurred_at, e.c.title, e.c.document)
                    .select_from(m.join(e, e.c.id == m.c.event_id))
                    .where(m.c.incident_id.in_(chunk), m.c.notify)):
                facts[page.incident_id].pages.append(PageFact(page.occurred_at, _rule(page.document, page.title)))
        _add_feedback(conn, facts, since)
    for fact in facts.values():
        fact.pages.sort(key=lambda p: p.at)
    return list(facts.values())


def _add_feedback(conn: sa.Connection, facts: dict[str, IncidentFacts], since: datetime | None) -> None:
    f = feedback
    cond: list[sa.ColumnElement[bool]] = []
    if since is not None:
        cond.append(f.c.occurred_at >= since)   # nobody answers an incident before it opened
    rows = list(conn.execute(sa.select(f.c.event_type, f.c.occurred_at, f.c.actor, f.c.incident_id,
                                       f.c.external_incident_id, f.c.document)
                             .where(*cond).order_by(f.c.occurred_at, f.c.id)))
    # PagerDuty's note and responder events name only its own incident: joined to triage's
    # through the other events of that incident. A merged incident's feedback counts in
    # the incident it was merged into.
    ours = {r.external_incident_id: r.incident_id for r in rows if r.external_incident_id and r.incident_id}
    named = {r.incident_id or ours.get(r.external_incident_id) for r in rows} - {None}
    holders = current_holders(conn, _present(named))
    for r in rows:
        incident_id = r.incident_id or ours.get(r.external_incident_id)
        fact = facts.get(holders.get(incident_id, incident_id)) if incident_id else None
        if fact is None:
            continue
        fact.any_feedback = True
        document = r.document if isinstance(r.document, dict) else {}
        person = r.actor if _by_a_person(document) else None
        if r.event_type in ASSIGNING and fact.paged_person is None:
            assignees = document.get("assignees")
            fact.paged_person = _person_of(assignees[0]) if isinstance(assignees, list) and assignees else None
        if r.event_type == ACKNOWLEDGED and person:
            fact.acted_on = True
            if fact.acknowledged_at is None:
                fact.acknowledged_at = r.occurred_at
        if r.event_type in RESOLVING:
            at = _resolved_at(r.event_type, document, r.occurred_at)
            if fact.resolved_at is None or at < fact.resolved_at:
                fact.resolved_at = at
            if person:
                fact.acted_on = True
                if fact.acknowledged_at is None or at < fact.acknowledged_at:
                    # Resolved by a person before (or without) an acknowledgement: seen then.
                    fact.acknowledged_at = at
        if r.event_type in CORRECTING and person:
            fact.acted_on = True
        if person and fact.responder is None and (r.event_type == ACKNOWLEDGED or r.event_type in RESOLVING):
            fact.responder = person


def _resolved_at(event_type: str, document: dict[str, Any], occurred_at: datetime) -> datetime:
    """The feedback API's resolution says when the incident was resolved; a webhook when it happened."""
    if event_type == API_RESOLUTION and isinstance(document.get("resolved_at"), str):
        try:
            return datetime.fromisoformat(document["resolved_at"])
        except ValueError:
            return occurred_at
    return occurred_at


def _present(ids: Iterable[str | None]) -> list[str]:
    return sorted(i for i in ids if i)
