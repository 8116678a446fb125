"""Responders' corrections to the engine's grouping: merging incidents and splitting one.

Both change incidents that consumers hold in memory, so they follow a batch's protocol:
one transaction that takes the scope's lock first (which bumps the scope's revision, so
every consumer reloads the scope at its next batch), then rewrites incidents, moves
memberships and signals, owes pages through the outbox and records who did it and why in
``feedback``. See docs/architecture.md, "Responders' corrections".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa

from triage.correlation.correlator import Correlator
from triage.correlation.decision import Action
from triage.correlation.evidence import Merged, Original, Rule, Split, rule_of
from triage.correlation.identity import dedup_key, incident_id_for
from triage.correlation.state import IncidentKind, IncidentState, IncidentStatus
from triage.correlation.stored_evidence import evidence_from_json
from triage.domain.event import AS_STORED, Event, EventKind, Status
from triage.models.embedder import Embedder
from triage.models.parameters import CorrelationParameters
from triage.paging.outbox import Owed, enqueue
from triage.store import schema as t
from triage.store.engine import chunks
from triage.store.feedback import feedback
from triage.store.parameters import ParameterStore
from triage.store.records import IncidentConflict, IncidentRecord
from triage.store.rows import incident_row, incident_state
from triage.store.sql import SqlStore

__all__ = ["Corrections", "merge_incidents", "split_incident"]


class Corrections:
    """Merge and split as the API asks for them, with the process's store, embedder (a
    split recomputes the incidents' centroids) and page targets (a merge resolves pages)."""

    def __init__(self, store: SqlStore, embedder: Embedder, page_targets: Sequence[str] = ()) -> None:
        self.store = store
        self.embedder = embedder
        self.page_targets = list(page_targets)
        self._parameters = ParameterStore(store.engine)

    def merge(self, target_id: str, source_ids: Sequence[str], *, author: str, reason: str) -> IncidentRecord:
        return merge_incidents(self.store, target_id, source_ids, author=author, reason=reason,
                               page_targets=self.page_targets)

    def split(self, incident_id: str, event_ids: Sequence[str], *, author: str, reason: str) -> IncidentRecord:
        """With the parameters in force now, as the next batch decides."""
        return split_incident(self.store, incident_id, event_ids, author=author, reason=reason,
                              parameters=self._parameters.current().parameters, embedder=self.embedder)


def merge_incidents(store: SqlStore, target_id: str, source_ids: Sequence[str], *, author: str, reason: str,
                    page_targets: Sequence[str] = (), now: datetime | None = None) -> IncidentRecord:
    """A responder's merge: the sources' events, signals and profiles move into the
    target, which the next batch then treats as one incident; the sources keep their
    rows (status ``merged``, ``merged_into`` the target, taking no more events), and a
    source that paged gets its page resolved. Under the scope's lock, like a batch,
    so it never interleaves with one and every consumer reloads the scope after it.
    Unknown ids raise ``LookupError``; ids from two scopes, a repeated id or one
    merged before raise ``IncidentConflict``. If only sources had paged, the target
    pages now in their place."""
    now = now or datetime.now(timezone.utc)
    wanted = [target_id, *source_ids]
    if not source_ids or len(set(wanted)) != len(wanted):
        raise IncidentConflict("name one or more other incidents to merge, each once")
    select = sa.select(t.incidents).where(t.incidents.c.id.in_(wanted))
    with store.engine.begin() as conn:
        scopes = sorted({r.scope for r in conn.execute(select)})
        if scopes:
            store.lock_scopes(conn, scopes)
        rows = {r.id: r for r in conn.execute(select)}   # again, under the lock
        missing = [i for i in wanted if i not in rows]
        if missing:
            raise LookupError(f"no incident {missing[0]!r}")
        if len(scopes) > 1:
            raise IncidentConflict(f"incidents of different correlation scopes ({', '.join(scopes)}) "
                                   "are never grouped")
        for i in wanted:
            if rows[i].merged_into:
                raise IncidentConflict(f"{i} was already merged into {rows[i].merged_into}")
        target = incident_state(rows[target_id])
        for source_id in source_ids:
            target.absorb(incident_state(rows[source_id]))
        conn.execute(t.incidents.update().where(t.incidents.c.id == target_id).values(incident_row(target)))
        store.link_services(conn, target_id, target.services - target.linked_services)
        conn.execute(t.incidents.update().where(t.incidents.c.id.in_(source_ids)).values(
            status=IncidentStatus.merged.value, merged_into=target_id, accepting_until=None, page_due_at=None, firing=[]))
        # Each source's opening decision now says who merged it and why (the original
        # decision kept inside), so the target counts as one incident opened.
        m = t.memberships
        opened = conn.execute(sa.select(m.c.event_id, m.c.incident_id, m.c.rule, m.c.evidence)
                              .where(m.c.incident_id.in_(source_ids), m.c.action == Action.opened.value)).all()
        if opened:
            conn.execute(m.update().where(m.c.event_id == sa.bindparam("b_event")).values(
                action=Action.attached.value, rule=Rule.merged.value,
                evidence=sa.bindparam("b_evidence", type_=m.c.evidence.type)), [
                {"b_event": r.event_id, "b_evidence": Merged(
                    source=r.incident_id, by=author, reason=reason, at=now,
                    original=Original(rule=rule_of(r.rule), evidence=evidence_from_json(r.rule, r.evidence))).as_json()}
                for r in opened])
        # Which events each source held: what makes the merge a grouping label
        # (``triage.store.grouping_labels`` undoes it to find triage's own grouping).
        moved: dict[str, list[str]] = {i: [] for i in source_ids}
        for r in conn.execute(sa.select(m.c.event_id, m.c.incident_id).where(m.c.incident_id.in_(source_ids))
                              .order_by(m.c.event_id)):
            moved[r.incident_id].append(r.event_id)
        conn.execute(m.update().where(m.c.incident_id.in_(source_ids)).values(incident_id=target_id))
        conn.execute(t.signals.update().where(t.signals.c.incident_id.in_(source_ids)).values(incident_id=target_id))
        paged = [i for i in source_ids if rows[i].last_notified_at is not None]
        enqueue(conn, [Owed(i, "resolve", f"merged-into-{target_id}") for i in paged], page_targets, now)
        if paged and rows[target_id].last_notified_at is None:
            # The page moves with the alerts: the incident they now belong to pages.
            enqueue(conn, [Owed(target_id, "trigger", f"merged-from-{paged[0]}")], page_targets, now)
        conn.execute(sa.insert(feedback).values(
            id=f"triage.merge:{target_id}:{now.isoformat()}", source="api", event_type="triage.merge",
            incident_id=target_id, occurred_at=now, received_at=now, actor=author,
            document={"into": target_id, "merged": list(source_ids), "reason": reason, "events": moved}))
    record = store.get_incident(target_id)
    assert record is not None
    return record


def split_incident(store: SqlStore, incident_id: str, event_ids: Sequence[str], *, author: str, reason: str,
                   parameters: CorrelationParameters, embedder: Embedder,
                   now: datetime | None = None) -> IncidentRecord:
    """A responder's split: ``event_ids`` leave the incident for a new one, and both are
    recomputed from the events they then hold, as the correlator built them
    (``Correlator.rebuild``); later repeats of a moved alert follow it. The new incident
    pages on its next alert, not at once: someone is already looking at it. Under the
    scope's lock, like a batch. An unknown incident raises ``LookupError``; events
    not in it, or all of its events, raise ``IncidentConflict``."""

    now = now or datetime.now(timezone.utc)
    wanted = set(event_ids)
    select = sa.select(t.incidents).where(t.incidents.c.id == incident_id)
    with store.engine.begin() as conn:
        first = conn.execute(select).first()
        if first is None:
            raise LookupError(f"no incident {incident_id!r}")
        store.lock_scopes(conn, [first.scope])
        row = conn.execute(select).one()
        if row.merged_into:
            raise IncidentConflict(f"{incident_id} was merged into {row.merged_into}")
        m = t.memberships
        held = [(Event.model_validate(r.document, context=AS_STORED), r.rule, r.template_id, r.evidence) for r in conn.execute(
            sa.select(t.events.c.document, m.c.rule, m.c.template_id, m.c.evidence)
            .select_from(t.events.join(m, m.c.event_id == t.events.c.id)).where(m.c.incident_id == incident_id))]
        present = {h[0].id for h in held}
        if not wanted or wanted - present:
            missing = sorted(wanted - present)
            raise IncidentConflict(f"event {missing[0]!r} is not in incident {incident_id}" if missing
                                   else "name one or more events to split off")
        if wanted == present:
            raise IncidentConflict("a split must leave the incident at least one event")
        kept = [h for h in held if h[0].id not in wanted]
        moved = sorted((h for h in held if h[0].id in wanted), key=lambda h: (h[0].occurred_at, h[0].id))
        store.load_embeddings(conn, embedder)   # the templates' vectors, without loading the model
        correlator = Correlator(parameters, embedder=embedder)
        original = incident_state(row)
        opener = moved[0][0]
        new = IncidentState(
            id=incident_id_for(f"split:{incident_id}:{opener.id}"), scope=original.scope, title=opener.title,
            opened_at=opener.occurred_at, last_event_at=opener.occurred_at, severity=opener.severity,
            kind=IncidentKind.incident if any(e.kind is EventKind.alert and e.status is Status.firing for e, *_ in moved)
            else IncidentKind.noise, templates=dict(original.templates),
            status=IncidentStatus.open if original.is_open else IncidentStatus.resolved)
        for incident, events in ((original, kept), (new, moved)):
            correlator.rebuild(incident, [(e, rule, template) for e, rule, template, _ in events])
        if not new.is_open and new.resolved_at is None:
            new.resolved_at = new.last_event_at
        conn.execute(t.incidents.update().where(t.incidents.c.id == incident_id).values(incident_row(original)))
        links = t.incident_services.c
        conn.execute(t.incident_services.delete().where(
            links.incident_id == incident_id, links.service.not_in(sorted(original.services))))
        conn.execute(t.incidents.insert().values(incident_row(new)))
        store.link_services(conn, new.id, new.services)
        conn.execute(m.update().where(m.c.event_id.in_(sorted(wanted))).values(incident_id=new.id))
        opener_rule, opener_evidence = moved[0][1], moved[0][3]
        conn.execute(m.update().where(m.c.event_id == opener.id).values(
            action=Action.opened.value, rule=Rule.split_off.value, evidence=Split(
                source=incident_id, by=author, reason=reason, at=now,
                original=Original(rule=rule_of(opener_rule),
                                  evidence=evidence_from_json(opener_rule, opener_evidence))).as_json()))
        # A signal follows the latest of its events: where its next repeat belongs.
        latest: dict[str, tuple[datetime, str]] = {}
        for owner, events in ((incident_id, kept), (new.id, moved)):
            for e, *_ in events:
                key = dedup_key(e)
                if key not in latest or latest[key][0] <= e.occurred_at:
                    latest[key] = (e.occurred_at, owner)
        follow = sorted(k for k, (_, owner) in latest.items() if owner == new.id)
        for chunk in chunks(follow):
            conn.execute(t.signals.update().where(t.signals.c.key.in_(chunk), t.signals.c.incident_id == incident_id)
                         .values(incident_id=new.id))
        conn.execute(sa.insert(feedback).values(
            id=f"triage.split:{incident_id}:{now.isoformat()}", source="api", event_type="triage.split",
            incident_id=incident_id, occurred_at=now, received_at=now, actor=author,
            document={"from": incident_id, "into": new.id, "events": sorted(wanted), "reason": reason}))
    record = store.get_incident(new.id)
    assert record is not None
    return record
