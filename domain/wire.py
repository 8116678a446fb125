"""A batch of validated events between two processes of one consumer, compactly.

The consuming process that fetches and validates (``triage.ingest``) hands its batches to
the process that correlates and stores them (``triage.correlator_process``). Pickling the
``Event`` models themselves cost about as much as validating them again (pydantic's
``__getstate__`` and ``__setstate__`` per event: docs/benchmarks.md, "Tried, not kept").
So a batch crosses as one pickle of plain tuples, each event's field values in the
model's field order (enum members and the UTC time zone pickled once per batch, by
pickle's memo), and the receiving side rebuilds each ``Event`` from its values without
validating it again: it was validated where it entered, and these are the values that
validation produced. Nothing else may be unpacked this way: ``unpack_batch`` is for
bytes ``pack_batch`` made in a process of the same triage.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from triage.domain.event import Event, ServiceEdge

_FIELDS: tuple[str, ...] = tuple(Event.model_fields)
_VALUES = itemgetter(*_FIELDS)
_FIELD_SET = frozenset(_FIELDS)
_set = object.__setattr__
_new = object.__new__


@dataclass(frozen=True)
class Prepared:
    """What the store would compute per event from the event alone, computed before the
    batch reaches the correlating process (where every microsecond is the domain's
    throughput): by event id, the dedup key (``triage.correlation.identity.dedup_key``)
    the stored JSON document (``triage.store.bulk.document_json``) or the whole stored
    row, and the masked text templating starts from
    (``triage.correlation.templating.premask``). An id missing here is computed where it
    is needed, as without it."""

    dedup_keys: dict[str, str] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)
    # event id -> its masked text (``triage.correlation.templating.premask``)
    masked: dict[str, str] = field(default_factory=dict)
    # masked text -> its embedding (float32 bytes), for texts the correlating process
    # was not handed before: most new templates' texts are their first line's masked text
    vectors: dict[str, bytes] = field(default_factory=dict)
    # event id -> its ``events`` row as the store binds it (``SqlStore.event_rows``), made
    # with ``received_at``, which the batch's other rows then carry too: the row is a
    # function of the event alone, and binding it (times as text on SQLite) was the
    # largest part of building a batch's rows
    event_rows: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    received_at: datetime | None = None


def pack_batch(events: list[Event], edges: list[ServiceEdge], prepared: Prepared | None = None) -> bytes:
    """``events``, ``edges`` and what was ``prepared`` for them as bytes for ``unpack_batch``."""
    extra = (prepared.dedup_keys, prepared.documents, prepared.masked, prepared.vectors, prepared.event_rows,
             prepared.received_at) if prepared is not None else None
    return pickle.dumps(([_VALUES(e.__dict__) for e in events],
                         [(x.caller, x.callee, x.observed_at) for x in edges], extra),
                        protocol=pickle.HIGHEST_PROTOCOL)


def _event(values: tuple[Any, ...]) -> Event:
    """An ``Event`` holding ``values`` (already validated), as pydantic's own
    ``model_construct`` would build it, without its per-field defaults pass."""
    event = _new(Event)
    _set(event, "__dict__", dict(zip(_FIELDS, values)))
    _set(event, "__pydantic_fields_set__", set(_FIELD_SET))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


def unpack_batch(data: bytes | memoryview) -> tuple[list[Event], list[ServiceEdge], Prepared | None]:
    """What ``pack_batch`` packed: equal events (``==``), equal edges, the same ``Prepared``."""
    rows, edges, extra = pickle.loads(data)
    prepared = Prepared(*extra) if extra is not None else None
    return [_event(r) for r in rows], [ServiceEdge(a, b, t) for a, b, t in edges], prepared
