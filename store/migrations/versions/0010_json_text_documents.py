"""events.document and memberships.evidence as json, not JSONB, on PostgreSQL: one of each
per event, written once and read back whole, never queried inside; JSONB parsed every
one on insert. (A rewrite of both tables: on a large store, run it in a quiet hour.)

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COLUMNS = [("events", "document"), ("memberships", "evidence")]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":   # SQLite stores JSON as text already
        for table, column in _COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE json USING {column}::json")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE jsonb USING {column}::jsonb")
