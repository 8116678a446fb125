"""api_keys and feedback (integrations)

Revision ID: 0002b
Revises: 0001

A branch beside the correlation engine's 0002; `upgrade heads` applies both.
"""

import sqlalchemy as sa
from alembic import op

from triage.store.schema import JSONType, UTCDateTime

revision = "0002b"
down_revision = "0001"
branch_labels = ("integrations",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", JSONType, nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime()),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("external_incident_id", sa.String(200)),
        sa.Column("incident_id", sa.String(64)),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(300)),
        sa.Column("document", JSONType, nullable=False),
    )
    op.create_index("ix_feedback_incident", "feedback", ["incident_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("api_keys")
