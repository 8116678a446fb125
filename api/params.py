"""Bounds on what comes in through paths, query strings and bodies: values the databases
can hold and search for, so that nonsense is a 422 naming the parameter, never a 500 from
the driver (an integer past 64 bits, a NUL character, a lone surrogate, a time whose
conversion to UTC leaves the calendar)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime

from triage.domain.event import storable_text

MAX_BIGINT = 2**63 - 1   # SQLite's INTEGER and PostgreSQL's bigint; offsets are bound to these
MAX_INT = 2**31 - 1      # PostgreSQL's integer: the columns of family ids and parameter versions


def storable_time(value: datetime) -> datetime:
    """In UTC, as the store compares and keeps it; a time that has no UTC form inside the
    calendar (9999-12-31T23:00-05:00) is refused."""
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("out of range: its UTC time must fall within years 1 to 9999") from None


Text = Annotated[str, AfterValidator(storable_text)]
Time = Annotated[AwareDatetime, AfterValidator(storable_time)]

Offset = Annotated[int, Query(ge=0, le=MAX_BIGINT, description="items to skip")]
IdPath = Annotated[str, Path(min_length=1, max_length=1000), AfterValidator(storable_text)]
