"""parameter_versions (tuning through the API)

Revision ID: 0005b
Revises: 0004b
"""

import sqlalchemy as sa
from alembic import op

from triage.store.schema import JSONType, UTCDateTime

revision = "0005b"
down_revision = "0004b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parameter_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("values", JSONType, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("parameter_versions")
