"""Which columns PostgreSQL's binary COPY can take, and as what (``binary_copy_types``).
That the values land right is the store contract's test (large batches go by COPY)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from triage.store import schema as t
from triage.store.bulk import BULK_COLUMNS, binary_copy_types

PG = postgresql.psycopg.dialect()  # type: ignore[attr-defined]


def test_the_copied_tables_go_binary_with_their_columns_types() -> None:
    assert binary_copy_types(PG, t.signals, BULK_COLUMNS["signals"]) == \
        ["text", "text", "text", "timestamptz", "timestamptz", "int4"]
    membership = dict(zip(BULK_COLUMNS["memberships"],
                          binary_copy_types(PG, t.memberships, BULK_COLUMNS["memberships"]) or []))
    assert membership["evidence"] == "text"          # a json column takes its text
    assert membership["notify"] == "bool" and membership["parameters_version"] == "int4"
    assert binary_copy_types(PG, t.events, BULK_COLUMNS["events"]) is not None


def test_a_jsonb_column_or_an_unknown_type_keeps_the_text_format() -> None:
    assert binary_copy_types(PG, t.incidents, BULK_COLUMNS["incidents"]) is None   # profile is JSONB
    odd = sa.Table("odd", sa.MetaData(), sa.Column("id", sa.Text), sa.Column("n", sa.Numeric))
    assert binary_copy_types(PG, odd, ["id", "n"]) is None
    big = sa.Table("big", sa.MetaData(), sa.Column("n", sa.BigInteger), sa.Column("s", sa.SmallInteger))
    assert binary_copy_types(PG, big, ["n", "s"]) == ["int8", "int2"]
