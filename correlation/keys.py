"""What makes two events the same signal, and which scope an event is grouped in."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from triage.ingest.event import Event, EventKind


def dedup_key(event: Event) -> str:
    """The source's own fingerprint when it sends one; otherwise a content hash.

    Alerts hash their label set and title (what Alertmanager fingerprints);
    log records and spans hash service, title and body: only exact repeats match.
    """
    if event.fingerprint:
        return f"{event.source}:{event.fingerprint}"
    if event.kind is EventKind.alert:
        basis: Any = [sorted((k, str(v)) for k, v in event.labels.items()), event.title]
    else:
        basis = [event.kind.value, event.service, event.title, event.body]
    digest = hashlib.blake2b(json.dumps(basis).encode(), digest_size=8).hexdigest()
    return f"{event.kind.value}:{digest}"


def scope_for(service: str | None, host: str | None) -> str:
    """The unit the baseline groups by, and the Kafka message key producers should use:
    all events of one scope then land on one partition, in order."""
    if service:
        return f"service:{service}"
    if host:
        return f"host:{host}"
    return "global"


def scope_of(event: Event) -> str:
    return scope_for(event.service, event.host)


def incident_id_for(first_event_id: str) -> str:
    """Deterministic, so that reprocessing a batch after a crash opens the same incident."""
    return "inc-" + hashlib.blake2b(first_event_id.encode(), digest_size=8).hexdigest()
