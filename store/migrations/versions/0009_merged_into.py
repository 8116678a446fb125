"""incidents.merged_into: the incident a responder merged this one into (POST
/incidents/{id}/merge); links to the merged one, in pages already sent, still lead there

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("merged_into", sa.String(64)))


def downgrade() -> None:
    op.drop_column("incidents", "merged_into")
