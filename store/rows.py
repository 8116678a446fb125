"""Rows to and from what the layers above hold: an incident's row and the correlator's
``IncidentState`` (the batch, merge and split), and the API's read-only records."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from triage.correlation.decision import Action
from triage.correlation.evidence import rule_of
from triage.correlation.state import IncidentKind, IncidentState, IncidentStatus
from triage.correlation.stored_evidence import evidence_from_json
from triage.domain.event import AS_STORED, Event, Severity
from triage.store import schema as t
from triage.store.records import IncidentRecord, Membership, StoredEvent


def incident_row(i: IncidentState) -> dict[str, Any]:
    return {
        "id": i.id, "scope": i.scope, "title": i.title, "status": i.status.value, "severity": i.severity.value,
        "opened_at": i.opened_at, "last_event_at": i.last_event_at, "resolved_at": i.resolved_at,
        "last_notified_at": i.last_notified_at, "event_count": i.event_count,
        "alert_count": i.alert_count, "suppressed_count": i.suppressed_count,
        "services": sorted(i.services), "firing": sorted(i.firing),
        "kind": i.kind.value, "accepting_until": i.accepting_until, "page_due_at": i.page_due_at,
        "transient": i.transient, "profile": i.profile(),
        "centroid_f32": None if i.centroid is None else np.asarray(i.centroid, dtype="<f4").tobytes(),
    }


def incident_state(r: sa.Row[Any]) -> IncidentState:
    incident = IncidentState(
        id=r.id, scope=r.scope, title=r.title, opened_at=r.opened_at, last_event_at=r.last_event_at,
        severity=Severity(r.severity), status=IncidentStatus(r.status), resolved_at=r.resolved_at,
        services=set(r.services), firing=set(r.firing), event_count=r.event_count,
        alert_count=r.alert_count, suppressed_count=r.suppressed_count, last_notified_at=r.last_notified_at,
        kind=IncidentKind(r.kind or IncidentKind.incident), accepting_until=r.accepting_until, page_due_at=r.page_due_at,
        transient=bool(r.transient),
        centroid=None if r.centroid_f32 is None else np.frombuffer(r.centroid_f32, dtype="<f4").tolist())
    incident.set_profile(r.profile)
    incident.linked_services = set(incident.services)   # written with the row, in one transaction
    return incident


def incident_record(r: sa.Row[Any]) -> IncidentRecord:
    return IncidentRecord(
        id=r.id, scope=r.scope, title=r.title, status=IncidentStatus(r.status), severity=r.severity,
        opened_at=r.opened_at, last_event_at=r.last_event_at, resolved_at=r.resolved_at,
        last_notified_at=r.last_notified_at, event_count=r.event_count, alert_count=r.alert_count,
        suppressed_count=r.suppressed_count, services=list(r.services), firing_alerts=len(r.firing),
        kind=IncidentKind(r.kind or IncidentKind.incident), transient=bool(r.transient), merged_into=r.merged_into)


def membership_columns() -> list[sa.ColumnElement[Any]]:
    """What ``stored_event`` reads of an event's membership, beside the event's row."""
    m = t.memberships
    return [m.c.incident_id, m.c.action, m.c.rule, m.c.evidence, m.c.parameters_version,
            m.c.notify, m.c.decided_at]


def stored_event(r: sa.Row[Any]) -> StoredEvent:
    membership = None
    if r.incident_id is not None:
        membership = Membership(event_id=r.id, incident_id=r.incident_id, action=Action(r.action),
                                rule=rule_of(r.rule), evidence=evidence_from_json(r.rule, r.evidence),
                                parameters_version=r.parameters_version,
                                notify=bool(r.notify), decided_at=r.decided_at)
    return StoredEvent(event=Event.model_validate(r.document, context=AS_STORED), received_at=r.received_at,
                       membership=membership)
