"""What makes two events the same signal, and what names an incident."""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring_ascii as _quoted
from datetime import datetime
from typing import Any

from triage.correlation.evidence import EpisodeEnd
from triage.domain.event import Event, EventKind
from triage.domain.scope import GLOBAL_SCOPE, scope_of

# signals.key is a VARCHAR(400): a longer key (a long fingerprint in a domain) is kept
# as its hash.
_KEY_MAX_LENGTH = 400


def dedup_key(event: Event) -> str:
    """The source's own fingerprint when it sends one; otherwise a content hash; inside
    the event's correlation domain.

    Alerts hash their label set (what Alertmanager fingerprints) with their service and
    host, or their labels and title when the labels do not name the alert;
    log records and spans hash service, title and body: only exact repeats match.
    Two domains' sources fingerprint the same label set alike (two clusters, one alert
    rule), so a domain's keys carry its scope: a repeat in one domain is never taken for
    a duplicate in another, and two members deciding different domains never write the
    same signal row. The global scope's keys are left bare.
    """
    if event.fingerprint:
        key = f"{event.source}:{event.fingerprint}"
    else:
        if event.kind is EventKind.alert:
            labels = sorted((k, str(v)) for k, v in event.labels.items())
            # A label set that names its alert is the alert's identity, as Alertmanager
            # fingerprints it, with the service and host the source may give as fields
            # instead: the title is an annotation, and sources word it by status ("DOWN:" /
            # "UP:", "[Triggered]" / "[Recovered]"), which would keep a resolve from ever
            # matching its alert. Other label sets (a team, an environment) say too little
            # on their own: the title is part of what the alert is.
            if "alertname" in event.labels:
                basis: Any = [labels, event.service, event.host]
            else:
                basis = [labels, event.title]
        else:
            basis = [event.kind.value, event.service, event.title, event.body]
        digest = hashlib.blake2b(_json(basis).encode(), digest_size=8).hexdigest()
        key = f"{event.kind.value}:{digest}"
    scope = scope_of(event)
    if scope != GLOBAL_SCOPE:
        key = f"{scope}/{key}"
    if len(key) > _KEY_MAX_LENGTH:
        key = "hash:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return key


def _json(basis: list[Any]) -> str:
    """``json.dumps(basis)``, the text stored keys were hashed from; a list of strings
    (every log record's and span's basis) written directly, which costs a third of what
    ``json.dumps`` spends setting up its encoder for each call."""
    if all(type(v) is str or v is None for v in basis):
        return "[" + ", ".join("null" if v is None else _quoted(v) for v in basis) + "]"
    return json.dumps(basis)


def incident_id_for(first_event_id: str) -> str:
    """Deterministic, so that reprocessing a batch after a crash opens the same incident."""
    return "inc-" + hashlib.blake2b(first_event_id.encode(), digest_size=8).hexdigest()


def episode_ended(event: Event, last_seen: datetime, now: datetime, resolve_timeout: float) -> EpisodeEnd | None:
    """Why a firing alert starts a new episode though no resolve ended the last one (last
    heard of at ``last_seen``): it began after that, or, saying no start, it was silent
    for ``resolve_timeout``. None: the same episode."""
    if event.starts_at is not None:
        return EpisodeEnd.started_later if event.starts_at > last_seen else None
    if round((now - last_seen).total_seconds(), 3) > resolve_timeout:
        return EpisodeEnd.resolve_timeout
    return None
