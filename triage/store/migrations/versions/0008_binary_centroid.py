"""incidents.centroid as float32 bytes (centroid_f32) instead of a JSON array: every batch
rewrites the centroids of the incidents it touched, and on PostgreSQL parsing 384 JSONB
numbers was most of that upsert's time

Revision ID: 0008
Revises: 0007
"""

import json

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_incidents = sa.table("incidents", sa.column("id", sa.String), sa.column("centroid", sa.JSON),
                      sa.column("centroid_f32", sa.LargeBinary))


def _as_list(value: object) -> list[float]:
    return json.loads(value) if isinstance(value, (str, bytes)) else list(value)  # type: ignore[call-overload]


def upgrade() -> None:
    op.add_column("incidents", sa.Column("centroid_f32", sa.LargeBinary))
    conn = op.get_bind()
    rows = conn.execute(sa.select(_incidents.c.id, _incidents.c.centroid)
                        .where(_incidents.c.centroid.is_not(None))).all()
    for row in rows:
        vector = np.asarray(_as_list(row.centroid), dtype="<f4").tobytes()
        conn.execute(_incidents.update().where(_incidents.c.id == row.id).values(centroid_f32=vector))
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("centroid")


def downgrade() -> None:
    op.add_column("incidents", sa.Column("centroid", sa.JSON))
    conn = op.get_bind()
    rows = conn.execute(sa.select(_incidents.c.id, _incidents.c.centroid_f32)
                        .where(_incidents.c.centroid_f32.is_not(None))).all()
    for row in rows:
        vector = [float(x) for x in np.frombuffer(row.centroid_f32, dtype="<f4")]
        conn.execute(_incidents.update().where(_incidents.c.id == row.id).values(centroid=vector))
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("centroid_f32")
