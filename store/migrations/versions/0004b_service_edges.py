"""service_edges (the service graph from traces)

Revision ID: 0004b
Revises: 0003b
"""

import sqlalchemy as sa
from alembic import op

from triage.store.schema import UTCDateTime

revision = "0004b"
down_revision = "0003b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_edges",
        sa.Column("caller", sa.String(200), primary_key=True),
        sa.Column("callee", sa.String(200), primary_key=True),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_edges")
