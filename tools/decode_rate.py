"""What decoding an event costs, as the fetching process decodes it and with the faster
JSON libraries issue 26 names: docs/benchmarks.md, "Decoding with other libraries".

    pip install msgspec orjson       # measuring aids, not dependencies of triage
    python tools/decode_rate.py [--events 20000]

The events are ``triage bench``'s synthetic ones (1 % unique templates). Each figure is
the best of five passes, in µs per event. ``msgspec`` decodes into a typed struct with
the Event's fields and types and none of its rules (severity mapping, bounds, names
taken from labels): a floor for a decoder that kept them, not a replacement.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson

from triage.evaluation.bench import synthetic_events
from triage.ingest.decode import decode_event, event_from_dict


class _EventFields(msgspec.Struct):
    id: str
    kind: str
    source: str
    occurred_at: datetime
    severity: str
    title: str
    service: str | None = None
    host: str | None = None
    status: str = "firing"
    body: str = ""
    labels: dict[str, str | int | float | bool | None] = {}
    fingerprint: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_service: str | None = None


def _best(values: list[bytes], decode: Callable[[bytes], Any], passes: int = 5) -> float:
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        for value in values:
            decode(value)
        times.append((time.perf_counter() - started) / len(values) * 1e6)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    values = [v for _, _, v in synthetic_events(args.events, 0.01, start=datetime(2026, 1, 1, tzinfo=timezone.utc),
                                                 spacing=timedelta(milliseconds=5))]
    fields = msgspec.json.Decoder(_EventFields)
    ways: dict[str, Callable[[bytes], Any]] = {
        "decode_event (json, then the pydantic Event: today)": decode_event,
        "orjson, then the pydantic Event": lambda v: event_from_dict(orjson.loads(v), default_id_basis=v),
        "json.loads alone": json.loads,
        "orjson.loads alone": orjson.loads,
        "msgspec into a typed struct of the Event's fields": fields.decode,
    }
    for name, decode in ways.items():
        print(f"{name:52s} {_best(values, decode):6.2f} us/event")


if __name__ == "__main__":
    main()
