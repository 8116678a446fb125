"""A latency run of `triage bench` (1,000 events/s by default) with its steps timed: where an
event's time from produce to stored goes (docs/benchmarks.md, "Latency at 1,000 events/s
over 60 s").

    python tools/latency_steps.py [--events 30000] [--rate 1000] [--no-store]

Prints the bench's own figures, then, past the first tenth of the run:
- produce -> decoded: the broker, the producer's linger and the consumer's polls;
- decoded -> handed to the handler: the wait for release (the same partition of the
  other topics read up to the event's time);
- the handler per batch (correlating and storing), and the batches' sizes;
- the consumer's polls: the timeouts asked, how long they blocked, how many were empty.

``--no-store``: the handler stores nothing, so what is left is the consumer alone.
Settings come from the environment as for the service (TRIAGE_KAFKA_POLL_TIMEOUT_MS, ...).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import kafka

import triage.evaluation.bench as bench
from triage.settings import Settings
from triage.store.records import BatchResult

_produced_to_decoded: list[float] = []
_release_waits: list[float] = []
_handler_ms: list[float] = []
_batch_sizes: list[int] = []
_polls: list[tuple[int, float, int]] = []   # timeout asked (ms), blocked (ms), records


def _timed_decoding(original: Callable[..., Any]) -> Callable[..., Any]:
    def decoding(self: Any, decoder: Any) -> Any:
        inner = original(self, decoder)

        def decode(topic: str, value: bytes | None) -> Any:
            decoded = inner(topic, value)
            now = time.time()
            _produced_to_decoded.extend((now - e.occurred_at.timestamp()) * 1000 for e in decoded[0])
            return decoded
        return decode
    return decoding


def _timed_handler(original: Callable[..., Any], store: bool) -> Callable[..., Any]:
    def call(self: Any, events: list[Any], edges: list[Any]) -> Any:
        now = time.time()
        _release_waits.extend((now - self.decoded_at.get(e.id, now)) * 1000 for e in events)
        started = time.perf_counter()
        if store:
            result = original(self, events, edges)
        else:
            self._stored(events)
            result = BatchResult(len(events), len(events), 0, 0, 0, 0)
        _handler_ms.append((time.perf_counter() - started) * 1000)
        _batch_sizes.append(len(events))
        return result
    return call


def _timed_poll(original: Callable[..., Any]) -> Callable[..., Any]:
    def poll(self: Any, timeout_ms: int = 0, max_records: int | None = None, update_offsets: bool = True) -> Any:
        started = time.perf_counter()
        records = original(self, timeout_ms=timeout_ms, max_records=max_records, update_offsets=update_offsets)
        _polls.append((timeout_ms, (time.perf_counter() - started) * 1000, sum(len(v) for v in records.values())))
        return records
    return poll


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1) if ordered else float("nan")


def _warm(values: list[Any]) -> list[Any]:
    return values[len(values) // 10:]   # the first tenth warms caches, as the bench's figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--no-store", action="store_true", help="a handler that stores nothing")
    args = parser.parse_args()
    # One process (the bench's ``_Timed``): the handler's time is the whole batch's.
    bench._Timed.decoding = _timed_decoding(bench._Timed.decoding)  # type: ignore[method-assign]
    bench._Timed.__call__ = _timed_handler(bench._Timed.__call__, store=not args.no_store)  # type: ignore[method-assign]
    kafka.KafkaConsumer.poll = _timed_poll(kafka.KafkaConsumer.poll)  # type: ignore[method-assign]
    figures = bench.run_bench(Settings(), events=args.events, unique_share=0.01, rate=args.rate)
    print(json.dumps({k: v for k, v in figures.items() if k.endswith(("_ms", "_quarter"))}))
    decoded, waits = _warm(_produced_to_decoded), _warm(_release_waits)
    print(f"produce -> decoded     p50 {_pct(decoded, .5)} ms, p99 {_pct(decoded, .99)} ms")
    print(f"decoded -> released    p50 {_pct(waits, .5)} ms, p90 {_pct(waits, .9)} ms, p99 {_pct(waits, .99)} ms")
    print(f"handler per batch      p50 {_pct(_handler_ms, .5)} ms, p99 {_pct(_handler_ms, .99)} ms, "
          f"max {max(_handler_ms, default=0):.1f} ms; {len(_handler_ms)} batches, "
          f"p50 {_pct(_batch_sizes, .5)} events, p99 {_pct(_batch_sizes, .99)}")
    polls = _warm(_polls)
    blocked = [p[1] for p in polls]
    print(f"polls                  {len(polls)}, timeouts asked {Counter(p[0] for p in polls).most_common(4)}; "
          f"blocked p50 {_pct(blocked, .5)} ms, p99 {_pct(blocked, .99)} ms, max {max(blocked, default=0):.1f} ms; "
          f"empty {sum(1 for p in polls if not p[2]) / max(1, len(polls)):.0%}; "
          f"over 40 ms and returning records {sum(1 for p in polls if p[1] > 40 and p[2])}")


if __name__ == "__main__":
    main()
