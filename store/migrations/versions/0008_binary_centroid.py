"""incidents.centroid as float32 bytes (centroid_f32) instead of a JSON array: every batch
rewrites the centroids of the incidents it touched, and on PostgreSQL parsing 384 JSONB
numbers was most of that upsert's time

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_incidents = sa.table("incidents", sa.column("id", sa.String), sa.column("centroid", sa.JSON),
                      sa.column("centroid_f32", sa.LargeBinary))


def _copy(source: str, target: str, convert: Callable[[Any], Any]) -> None:
    """Fill column ``target`` from ``source``, row by row: a few hundred open incidents."""
    conn = op.get_bind()
    column = _incidents.c[source]
    for ident, value in conn.execute(sa.select(_incidents.c.id, column).where(column.is_not(None))).all():
        conn.execute(_incidents.update().where(_incidents.c.id == ident).values({target: convert(value)}))


def upgrade() -> None:
    op.add_column("incidents", sa.Column("centroid_f32", sa.LargeBinary))
    _copy("centroid", "centroid_f32", lambda vector: np.asarray(vector, dtype="<f4").tobytes())
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("centroid")


def downgrade() -> None:
    op.add_column("incidents", sa.Column("centroid", sa.JSON))
    _copy("centroid_f32", "centroid", lambda raw: np.frombuffer(raw, dtype="<f4").tolist())
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("centroid_f32")
