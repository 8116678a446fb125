"""alert history: correlation_models.alert_history, a scope's alert families and their
episodes (what damps the pages of a chronic or flapping family; correlation/holds.py)

Revision ID: 0012
Revises: 0011c
"""

import sqlalchemy as sa
from alembic import op

from triage.store.schema import JSONType

revision = "0012"
down_revision = "0011c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: instant on PostgreSQL. A scope without it has no history yet.
    op.add_column("correlation_models", sa.Column("alert_history", JSONType))


def downgrade() -> None:
    op.drop_column("correlation_models", "alert_history")
