"""catalog_versions (the service catalog, versioned), changes, service_versions

Revision ID: 0011c
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from triage.store.schema import JSONType, UTCDateTime

revision = "0011c"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_versions",
        sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("entry_kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", JSONType),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("entry_kind", "name", "version", name="uq_catalog_versions_entry"),
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("service", sa.String(200)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("version", sa.Text),
        sa.Column("previous_version", sa.Text),
        sa.Column("who", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_changes_service_occurred", "changes", ["service", "occurred_at"])
    op.create_index("ix_changes_occurred_at", "changes", ["occurred_at"])
    op.create_table(
        "service_versions",
        sa.Column("service", sa.String(200), primary_key=True),
        sa.Column("version", sa.String(200), primary_key=True),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_versions")
    op.drop_index("ix_changes_occurred_at", "changes")
    op.drop_index("ix_changes_service_occurred", "changes")
    op.drop_table("changes")
    op.drop_table("catalog_versions")
