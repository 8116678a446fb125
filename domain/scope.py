"""Which correlation scope an event belongs to: the unit of correlation, the store's lock
key and the Kafka message key (docs/architecture.md, "Correlation scope and scale-out")."""

from __future__ import annotations

from triage.domain.event import Event, domain_of

# The scope of every event that names no correlation domain of its own.
GLOBAL_SCOPE = "global"


def scope_for(domain: str | None = None) -> str:
    """The unit of correlation, the store's lock key and the Kafka message key.

    The engine groups across services and hosts (a fault travels along the service
    graph), so everything that may end up in one incident must share a scope, or two
    consumers holding different partitions would decide it differently. A scope is
    therefore a whole correlation domain: ``domain:<name>`` when the event carries the
    ``triage.domain`` label, else one ``global`` scope.
    See docs/architecture.md, "Correlation scope and scale-out".
    """
    return f"domain:{domain}" if domain else GLOBAL_SCOPE


def scope_of(event: Event) -> str:
    return scope_for(domain_of(event.labels))
