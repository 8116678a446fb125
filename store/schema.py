"""The tables, as SQLAlchemy Core metadata. Alembic migrations create them; this
module is what queries are written against. Keep the two in step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
# Written once per event and read back whole, never queried inside: PostgreSQL's json
# keeps the text as sent, where JSONB parses it on every insert (migration 0010).
JSONTextType = sa.JSON()


# A batch binds each event's instant several times (the event, its signal's first and
# last sighting), and converting one costs more than looking it up: the texts of the
# instants bound lately, by value (equal instants have one UTC text).
_SQLITE_TEXTS: dict[datetime, str] = {}
_SQLITE_TEXTS_MAX = 1 << 13


def _sqlite_text(value: datetime) -> str:
    text = _SQLITE_TEXTS.get(value)
    if text is None:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        if value.tzinfo is timezone.utc:   # what the event model holds: no conversion
            text = value.isoformat(" ", "microseconds")[:-6]
        else:
            text = value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")
        if len(_SQLITE_TEXTS) >= _SQLITE_TEXTS_MAX:
            _SQLITE_TEXTS.clear()
        _SQLITE_TEXTS[value] = text
    return text


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
        generic = super().bind_processor(dialect)
        if dialect.name != "sqlite" or generic is None:
            return generic

        # On SQLite the value ends up as sqlite.DATETIME's text, "YYYY-MM-DD HH:MM:SS.ffffff":
        # what isoformat writes in C, several times faster than the generic %-formatting.
        # Used only if it agrees with SQLAlchemy.
        def fast(value: datetime | None) -> str | None:
            return None if value is None else _sqlite_text(value)

        sample = datetime(987, 6, 5, 4, 3, 2, 1, tzinfo=timezone.utc)
        return fast if fast(sample) == generic(sample) else generic

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("service", sa.String(200)),
    sa.Column("host", sa.String(300)),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(300)),
    sa.Column("document", JSONTextType, nullable=False),  # the whole validated Event
    sa.Index("ix_events_occurred_at", "occurred_at"),
)

incidents = sa.Table(
    "incidents", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("scope", sa.String(400), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("last_event_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("last_notified_at", UTCDateTime()),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("alert_count", sa.Integer, nullable=False),
    sa.Column("suppressed_count", sa.Integer, nullable=False),
    sa.Column("services", JSONType, nullable=False),
    sa.Column("firing", JSONType, nullable=False),
    # The correlation engine's profile of the incident (migration 0002).
    sa.Column("kind", sa.String(16), nullable=False, server_default="incident"),  # incident | noise
    sa.Column("accepting_until", UTCDateTime()),   # the last instant a new event may join
    sa.Column("page_due_at", UTCDateTime()),       # first page held until then (auto-pause)
    sa.Column("transient", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("profile", JSONType),                # nodes, footprint, templates, labels
    # Normalised mean template embedding, float32 little-endian (migration 0008).
    sa.Column("centroid_f32", sa.LargeBinary),
    # Set when a responder merged this incident into another (migration 0009); its
    # events, signals and counts moved there, and it takes no more events.
    sa.Column("merged_into", sa.String(64)),
    sa.Index("ix_incidents_scope_status", "scope", "status"),
    sa.Index("ix_incidents_opened_at", "opened_at"),
    # No index holds a column that every event's batch changes (accepting_until,
    # last_event_at, the counts): PostgreSQL then updates an incident in place (a HOT
    # update) instead of writing a new row version into every index, versions that only a
    # vacuum clears and that every read of the incident walks meanwhile (migration 0013).
    # Incidents whose first page is held by auto-pause (migration 0006): what the ticker asks for.
    sa.Index("ix_incidents_held", "status", "page_due_at",
             sqlite_where=sa.text("page_due_at IS NOT NULL AND last_notified_at IS NULL"),
             postgresql_where=sa.text("page_due_at IS NOT NULL AND last_notified_at IS NULL")),
)

incident_services = sa.Table(
    "incident_services", metadata,
    sa.Column("incident_id", sa.String(64), primary_key=True),
    sa.Column("service", sa.String(200), primary_key=True),
    sa.Index("ix_incident_services_service", "service"),
)

memberships = sa.Table(
    "memberships", metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("incident_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("evidence", JSONTextType, nullable=False),
    sa.Column("parameters_version", sa.Integer, nullable=False),
    sa.Column("notify", sa.Boolean, nullable=False),
    sa.Column("decided_at", UTCDateTime(), nullable=False),
    # The template the decision used (migration 0006; NULL for duplicates and resolves,
    # whose decisions name none): what alert family statistics count.
    sa.Column("template_id", sa.String(64)),
    sa.Index("ix_memberships_incident", "incident_id"),
    sa.Index("ix_memberships_template", "template_id", "incident_id", "notify", "decided_at",
             sqlite_where=sa.text("template_id IS NOT NULL"), postgresql_where=sa.text("template_id IS NOT NULL")),
)

signals = sa.Table(
    "signals", metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("incident_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("first_seen", UTCDateTime(), nullable=False),
    sa.Column("last_seen", UTCDateTime(), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
)

# One row per correlation scope. Writers lock the rows of their batch's scopes
# (SELECT ... FOR UPDATE, in key order) so that two consumers can never decide
# events of one scope at the same time, whatever the Kafka assignment says.
scopes = sa.Table(
    "scopes", metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    # Bumped by every transaction holding the scope's lock (migration 0007): the check
    # that lets a process reuse the incidents it kept from its own last batch.
    sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"),
)

# What a correlation scope has learned from its stream (migration 0002): the log
# template miner's snapshot and the service graph, one row per scope, written in the
# batch transaction under the scope's lock; ``version`` lets a process keep its copy
# in memory and reload only when another process has moved it on.
correlation_models = sa.Table(
    "correlation_models", metadata,
    sa.Column("scope", sa.String(400), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("templater", JSONType, nullable=False),
    sa.Column("graph", JSONType, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The scope's alert families and their episodes (migration 0012, correlation/holds.py):
    # what damps a chronic or flapping family's pages. NULL: none recorded yet.
    sa.Column("alert_history", JSONType),
)

# Template embeddings (migration 0002): a pure function of (model, text), so rows are
# only ever inserted; any process may add them.
template_embeddings = sa.Table(
    "template_embeddings", metadata,
    sa.Column("key", sa.String(64), primary_key=True),      # blake2b(model + text)
    sa.Column("model", sa.String(100), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("vector", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_template_embeddings_model", "model"),
)

# Pages owed, one row per target (``triage.paging.outbox``).
outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.String(200), primary_key=True),  # target:incident:action:first event id
    sa.Column("incident_id", sa.String(64), nullable=False),
    sa.Column("target", sa.String(32), nullable=False),  # pagerduty | webhook | kafka
    sa.Column("action", sa.String(16), nullable=False),  # trigger | resolve
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | failed | skipped
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime()),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
)
