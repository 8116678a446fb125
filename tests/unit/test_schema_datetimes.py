"""SQLite's text for the store's datetimes: the store's own fast conversion writes
exactly what SQLAlchemy's generic one writes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from triage.store.schema import UTCDateTime

DIALECT = sqlite.dialect()
# as the store looks it up (`BulkInsert`): the dialect's own implementation of the type
FAST = UTCDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
GENERIC = sa.DateTime().dialect_impl(DIALECT).bind_processor(DIALECT)


@pytest.mark.parametrize("value", [
    datetime(2026, 11, 24, 8, 0, 0, 123456, tzinfo=timezone.utc),
    datetime(2026, 11, 24, 8, 0, 0, tzinfo=timezone.utc),
    datetime(2026, 11, 24, 13, 30, 0, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(1, 1, 1, 0, 0, tzinfo=timezone.utc),
])
def test_fast_text_is_sqlalchemys_text_of_the_utc_instant(value: datetime) -> None:
    assert FAST is not None and GENERIC is not None
    assert FAST(value) == GENERIC(value.astimezone(timezone.utc).replace(tzinfo=None))


def test_one_instant_in_two_zones_has_one_text_and_a_naive_value_is_refused() -> None:
    assert FAST is not None
    utc = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    east = utc.astimezone(timezone(timedelta(hours=9)))
    assert FAST(east) == FAST(utc) == "2026-01-02 03:04:05.000006"
    with pytest.raises(ValueError, match="naive"):
        FAST(utc.replace(tzinfo=None))   # equal digits, already converted once: still refused
    assert FAST(None) is None
