"""scopes.revision: bumped by every transaction that takes a scope's lock, so a process
can tell whether the incidents it kept in memory from its last batch are still current

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scopes", sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("scopes", "revision")
