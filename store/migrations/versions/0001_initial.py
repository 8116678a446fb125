"""events, incidents, memberships, signals, scopes

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from triage.store.schema import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
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
        sa.Column("document", JSONType, nullable=False),
    )
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"])
    op.create_table(
        "incidents",
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
    )
    op.create_index("ix_incidents_scope_status", "incidents", ["scope", "status"])
    op.create_index("ix_incidents_opened_at", "incidents", ["opened_at"])
    op.create_table(
        "incident_services",
        sa.Column("incident_id", sa.String(64), primary_key=True),
        sa.Column("service", sa.String(200), primary_key=True),
    )
    op.create_index("ix_incident_services_service", "incident_services", ["service"])
    op.create_table(
        "memberships",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("evidence", JSONType, nullable=False),
        sa.Column("parameters_version", sa.Integer, nullable=False),
        sa.Column("notify", sa.Boolean, nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_memberships_incident", "memberships", ["incident_id"])
    op.create_table(
        "signals",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table("scopes", sa.Column("key", sa.String(400), primary_key=True))


def downgrade() -> None:
    for name in ["scopes", "signals", "memberships", "incident_services", "incidents", "events"]:
        op.drop_table(name)
