"""Ingest: turn whatever the monitoring tools send into validated ``Event`` objects.

Nothing here knows about correlation, the store or the API. Errors are raised as
``DecodeError`` (with a reason a human can act on) and handled by the caller:
the Kafka consumer sends the message to the dead-letter topic, the API answers 4xx.
"""

from triage.domain.event import Event, EventKind, Severity, Status

__all__ = ["Event", "EventKind", "Severity", "Status"]
