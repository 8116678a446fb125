"""correlation engine: incident profiles, learned models per scope, template embeddings

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from triage.store.schema import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="incident"))
        batch.add_column(sa.Column("accepting_until", UTCDateTime()))
        batch.add_column(sa.Column("page_due_at", UTCDateTime()))
        batch.add_column(sa.Column("transient", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("profile", JSONType))
        batch.add_column(sa.Column("centroid", JSONType))
    op.create_index("ix_incidents_scope_accepting", "incidents", ["scope", "accepting_until"])
    op.create_table(
        "correlation_models",
        sa.Column("scope", sa.String(400), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("templater", JSONType, nullable=False),
        sa.Column("graph", JSONType, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "template_embeddings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("vector", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_template_embeddings_model", "template_embeddings", ["model"])


def downgrade() -> None:
    op.drop_table("template_embeddings")
    op.drop_table("correlation_models")
    op.drop_index("ix_incidents_scope_accepting", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        for name in ["centroid", "profile", "transient", "page_due_at", "accepting_until", "kind"]:
            batch.drop_column(name)
