"""The domain: what every layer speaks of and may import, and that imports no other layer.

``Event`` (an alert, log record or span, validated once at the edge) and ``ServiceEdge``
(a call a trace revealed), the correlation scope an event belongs to, the one tree of
errors, and ``Health`` (the state each long-running component reports).
"""

from triage.domain.event import Event, EventKind, ServiceEdge, Severity, Status
from triage.domain.scope import GLOBAL_SCOPE, scope_for, scope_of

__all__ = ["Event", "EventKind", "GLOBAL_SCOPE", "ServiceEdge", "Severity", "Status", "scope_for", "scope_of"]
