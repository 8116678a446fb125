"""What a page says: an incident and its evidence, as PagerDuty Events v2 and as JSON."""

from __future__ import annotations

from collections import Counter
from typing import Any

from triage.correlation.evidence import Joined, Opened
from triage.correlation.explain import explain
from triage.correlation.holds import Hold
from triage.domain.event import Severity
from triage.models.recommender import Suggestions
from triage.models.triage_context import TriageContext
from triage.paging.summary import Urgency, novelty_of, page_title, pagerduty_severity, urgency_of
from triage.store import IncidentRecord, StoredEvent

_PD_SEVERITY = {"critical": "critical", "error": "error", "warning": "warning", "info": "info", "debug": "info"}
MAX_TITLES = 20
MAX_REASONS = 10


def incident_document(incident: IncidentRecord, events: list[StoredEvent], api_url: str,
                      suggestions: Suggestions | None = None,
                      triage: TriageContext | None = None) -> dict[str, Any]:
    """The enriched page: what on-call needs to decide, why these alerts are together, and
    who resolved similar incidents before and how; and ``triage``: probable cause, recent
    changes, owner team, responders, remediations and similar incidents with evidence."""
    alert_titles = Counter(s.event.title for s in events if s.event.kind.value == "alert")
    reasons = Counter(explain(s.membership.rule, s.membership.evidence) for s in events
                      if s.membership is not None and s.membership.action == "attached")
    novelty = novelty_of(_opening_hold(events))
    urgency = urgency_of(_severity(incident.severity), novelty)
    return {
        "incident_id": incident.id,
        "title": incident.title,
        "page_title": page_title([s.event for s in events], incident.services, incident.title),
        "urgency": urgency.value,
        "novelty": novelty.value if novelty is not None else None,
        "status": incident.status,
        "severity": incident.severity,
        "services": incident.services,
        "opened_at": incident.opened_at.isoformat(),
        "last_event_at": incident.last_event_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "alert_count": incident.alert_count,
        "event_count": incident.event_count,
        "duplicates_suppressed": incident.suppressed_count,
        "firing_alerts": incident.firing_alerts,
        "grouped_alert_titles": [t for t, _ in alert_titles.most_common(MAX_TITLES)],
        "why_grouped": [r for r, _ in reasons.most_common(MAX_REASONS)],
        **(suggestions or Suggestions.none()).document(),
        "triage": triage.document() if triage is not None else None,
        "url": f"{api_url}/incidents/{incident.id}",
    }


MAX_LINKS = 5


def _triage_details(triage: dict[str, Any] | None) -> dict[str, Any]:
    """The triage context in a page's ``custom_details``: short enough to read on a phone."""
    if not triage:
        return {}
    return {
        "probable_cause": [f"{c['component']} ({c['confidence']:.0%}): {'; '.join(c['evidence'][:3])}"
                           for c in triage["probable_cause"]],
        "owner_team": triage["owner_team"],
        "responders": [f"{r['person']} ({r['confidence']:.0%}): {'; '.join(r['evidence'][:2])}"
                       for r in triage["responders"]],
        "recent_changes": [f"{c['evidence']}: {c['summary']}" for c in triage["recent_changes"]],
        "remediations": [f"{r['text']} ({r['evidence']})" for r in triage["remediations"]],
        "similar_incidents": [f"{s['incident_id']} {s['title']}".strip() for s in triage["similar_incidents"]],
    }


def _links(document: dict[str, Any]) -> list[dict[str, str]]:
    """The incident, then its runbooks and the changes that link somewhere."""
    links = [{"href": document["url"], "text": "Incident in triage"}]
    triage = document.get("triage") or {}
    for r in triage.get("remediations", []):
        if r.get("url") and len(links) < MAX_LINKS:
            links.append({"href": r["url"], "text": f"Runbook: {r['text']}"[:255]})
    for c in triage.get("recent_changes", []):
        if c.get("link") and len(links) < MAX_LINKS + 2:
            links.append({"href": c["link"], "text": f"Change: {c['summary']}"[:255]})
    return links


def pagerduty_event(action: str, document: dict[str, Any], routing_key: str) -> dict[str, Any]:
    """Events API v2: one alert per incident, dedup_key = the incident id, so re-sends
    update it rather than open another."""
    if action == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": document["incident_id"]}
    services = document["services"]
    count = document["alert_count"]
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": document["incident_id"],
        "payload": {
            "summary": f"{document.get('page_title') or document['title']} ({count} alert{'s' if count != 1 else ''}"
                       f"{', ' + ', '.join(services[:3]) if services else ''})"[:1024],
            "source": services[0] if services else "triage",
            "severity": _pd_severity(document),
            "timestamp": document["opened_at"],
            "component": ", ".join(services)[:255] or None,
            "group": "triage",
            "class": "incident",
            "custom_details": {**{k: document[k] for k in (
                "urgency", "novelty", "alert_count", "event_count", "services", "grouped_alert_titles", "why_grouped",
                "similar_past_incidents", "suggested_responders", "suggested_remediations", "firing_alerts")},
                               **_triage_details(document.get("triage"))},
        },
        "links": _links(document),
        "client": "triage",
        "client_url": document["url"],
    }


def _severity(text: str) -> Severity:
    try:
        return Severity(text)
    except ValueError:
        return Severity.error


def _pd_severity(document: dict[str, Any]) -> str:
    """The Events v2 severity: the one that gives the page's urgency (``summary``)."""
    urgency = document.get("urgency")
    if urgency is None:
        return _PD_SEVERITY.get(document["severity"], "error")
    return pagerduty_severity(_severity(document["severity"]), Urgency(urgency))


def _opening_hold(events: list[StoredEvent]) -> Hold | None:
    """The hold of the decision that made the incident one (its family's history then)."""
    for stored in sorted(events, key=lambda s: (s.event.occurred_at, s.event.id)):
        evidence = stored.membership.evidence if stored.membership is not None else None
        if isinstance(evidence, (Opened, Joined)) and evidence.hold is not None and evidence.hold.family is not None:
            return evidence.hold
    return None
