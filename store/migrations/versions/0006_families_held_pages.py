"""alert families and held pages: memberships.template_id, fitted families with their
stats, job leases, an index of incidents whose first page is held (auto-pause)

Merges the two branches (0002 correlation engine, 0002b..0005b keys to parameters).

Revision ID: 0006
Revises: 0002, 0005b
"""

import sqlalchemy as sa
from alembic import op

from triage.store.schema import JSONType, UTCDateTime

revision = "0006"
down_revision = ("0002", "0005b")
branch_labels = None
depends_on = None

_TEMPLATED = sa.text("template_id IS NOT NULL")
_HELD = sa.text("page_due_at IS NOT NULL AND last_notified_at IS NULL")


def upgrade() -> None:
    # Nullable, no default: instant on PostgreSQL whatever the table's size. Rows decided
    # before this migration keep NULL (they are simply not counted in family stats).
    op.add_column("memberships", sa.Column("template_id", sa.String(64)))
    op.create_index("ix_memberships_template", "memberships", ["template_id", "incident_id", "notify", "decided_at"],
                    sqlite_where=_TEMPLATED, postgresql_where=_TEMPLATED)
    op.create_index("ix_incidents_held", "incidents", ["status", "page_due_at"],
                    sqlite_where=_HELD, postgresql_where=_HELD)
    op.create_table(
        "template_families",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("fitted_at", UTCDateTime(), nullable=False),
        sa.Column("fitted_by", sa.String(200), nullable=False),
        sa.Column("templates", sa.Integer, nullable=False),
        sa.Column("next_id", sa.Integer, nullable=False),
        sa.Column("document", JSONType, nullable=False),
    )
    op.create_table(
        "template_family_stats",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("family", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("incidents", sa.Integer, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("last_seen", UTCDateTime()),
        sa.Column("templates", JSONType, nullable=False),
    )
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_table("template_family_stats")
    op.drop_table("template_families")
    op.drop_index("ix_incidents_held", table_name="incidents")
    op.drop_index("ix_memberships_template", table_name="memberships")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("template_id")
