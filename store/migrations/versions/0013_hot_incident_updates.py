"""incidents: no index on accepting_until, so that an incident's update is a HOT update on
PostgreSQL (store/schema.py, the comment on ``incidents``' indexes)

A batch updates its incidents' accepting_until; with that column indexed, every update
wrote a new version of the row into each of the table's indexes and left the old one for
a vacuum: at 1,000 events/s the five incidents of the latency bench left 20,000 dead
versions a minute, and each batch's read of them slowed as they piled up. Loading a
scope's incidents that still accept events (store/batch.py) goes through
ix_incidents_scope_status and filters on accepting_until: it runs when a scope is not held
in memory, not per event.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_incidents_scope_accepting", table_name="incidents")


def downgrade() -> None:
    op.create_index("ix_incidents_scope_accepting", "incidents", ["scope", "accepting_until"])
