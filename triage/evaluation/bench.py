"""``triage bench``: speed and memory, through the real broker, correlation and store.

Throughput: N synthetic events (a share of them unique templates) are produced first, then
one consumer is timed from its first poll to the last event stored. Latency: events are
produced at a fixed rate while the consumer runs, and each event's latency is the time from
its ``occurred_at`` (set when it is produced) to the commit of its batch; the part of it
from the consumer decoding the event to that commit is reported too (``in_triage_*``)."""

from __future__ import annotations

import gc
import gzip
import json
import multiprocessing
import resource
import tempfile
import threading
import time
import random
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from triage.broker import EmbeddedBroker
from triage.evaluation.cpu import database_backends, peak_rss_of_mib, process_cpu_s, stage_figures, total_cpu_s, us_per_event
from triage.domain.scope import scope_for
from triage.domain.event import DOMAIN_LABEL, Event, domain_of
from triage.ingest.kafka import Decoded, Decoder, Handler, Pipelined
from triage.ingest.kafka_admin import ensure_topics
from triage.service import Runtime
from triage.settings import Settings


def storm_lines(copies: int) -> Iterator[tuple[str, bytes]]:
    """The bundled storm ``copies`` times over, each copy with new ids and 2 h later:
    a longer stream with the same shape. Yields (event id, JSON line)."""
    lines = gzip.decompress((files("triage") / "data" / "sample_storm.jsonl.gz").read_bytes()).splitlines()
    for copy in range(copies):
        shift = timedelta(hours=2 * copy)
        for line in lines:
            doc = json.loads(line)
            doc["id"] = f"{doc['id']}-c{copy}"
            occurred = datetime.fromisoformat(doc["occurred_at"].replace("Z", "+00:00")) + shift
            doc["occurred_at"] = occurred.isoformat()
            yield doc["id"], json.dumps(doc).encode()


def write_storm(path: Path, copies: int) -> set[str]:
    ids: set[str] = set()
    with path.open("wb") as out:
        for event_id, line in storm_lines(copies):
            ids.add(event_id)
            out.write(line + b"\n")
    return ids


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_figures(cpu_s: float, events: int) -> dict[str, float]:
    """The triage process's CPU time over the timed part (all its threads). The machine
    is shared and its speed varies by the hour: CPU per event moves less with the load
    around it than events per second do, which waits for the CPU as well."""
    return {"cpu_s": round(cpu_s, 2), "cpu_us_per_event": round(cpu_s / events * 1e6, 1) if events else 0.0}


def _past_stream(events: int, unique_share: float, spacing_ms: float,
                 domains: list[str] | None = None) -> Iterator[tuple[str, str, bytes]]:
    """The throughput runs' events: ``spacing_ms`` apart in event time, the last an hour ago."""
    spacing = timedelta(milliseconds=spacing_ms)
    start = datetime.now(timezone.utc) - timedelta(hours=1) - spacing * events
    return synthetic_events(events, unique_share, start=start, spacing=spacing, domains=domains)


def run_store_bench(settings: Settings, *, events: int, unique_share: float,
                    spacing_ms: float = 10.0) -> dict[str, Any]:
    """The pipeline alone (correlation + one store transaction per batch), no Kafka: the same
    synthetic events as ``run_bench``, decoded up front, in batches of
    ``kafka_max_poll_records``. Separates what triage costs from what the broker costs."""
    from triage.ingest.decode import event_from_dict
    from triage.services.pipeline import Pipeline
    from triage.service import tune_gc
    from triage.models.embedder import make_embedder
    from triage.store import SqlStore

    embedder = make_embedder(settings.embedder)
    embedder.embed(["triage start-up"])
    tune_gc()
    batch_size = settings.kafka_max_poll_records
    stream = _past_stream(events, unique_share, spacing_ms)
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp:
        url = settings.database_url if "database_url" in settings.model_fields_set \
            else f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = SqlStore.from_url(url)
        pipeline = Pipeline(store, embedder)
        seconds, cpu_s, done, rates, rss = 0.0, 0.0, 0, [], []
        window_s, window_n = 0.0, 0
        batch: list[Event] = []
        for n, (_, _, value) in enumerate(stream, start=1):
            batch.append(event_from_dict(json.loads(value)))
            if len(batch) == batch_size or n == events:
                started, cpu_before = time.perf_counter(), time.process_time()
                pipeline(batch)
                took = time.perf_counter() - started
                cpu_s += time.process_time() - cpu_before
                seconds, window_s, window_n = seconds + took, window_s + took, window_n + len(batch)
                before, done = done, done + len(batch)
                batch = []
                if done // 100_000 > before // 100_000:
                    rates.append(round(window_n / window_s))
                    rss.append(round(current_rss_mib(), 1))
                    window_s, window_n = 0.0, 0
        store.close()
    return {"events": done, "unique_share": unique_share, "spacing_ms": spacing_ms,
            "database": url.split(":", 1)[0], "batch": batch_size,
            "pipeline_events_per_s": round(done / seconds), "pipeline_events_per_s_per_100k": rates,
            **_cpu_figures(cpu_s, done), **stage_figures([pipeline.stages], cpu_s, done),
            "rss_mib_per_100k": rss, "peak_rss_mib": round(peak_rss_mib(), 1)}


SERVICES = ["frontend", "cartservice", "checkoutservice", "currencyservice", "emailservice", "paymentservice",
            "productcatalogservice", "recommendationservice", "shippingservice", "adservice", "redis-cart"]
_KINDS = ["alert"] * 10 + ["log"] * 60 + ["span"] * 30


def synthetic_events(count: int, unique_share: float, *, start: datetime | None, spacing: timedelta,
                     seed: int = 7, domains: list[str] | None = None) -> Iterator[tuple[str, str, bytes]]:
    """``count`` events drawn from ``max(1, count * unique_share)`` message templates, with
    numbers, ids and durations varying inside each template (what a template miner masks).
    Yields (kind, scope key, JSON). Deterministic for a seed, except that ``start=None``
    stamps each event with the time it is generated (live traffic, for latency). With
    ``domains``, event i belongs to correlation domain ``domains[i % len(domains)]``."""
    rng = random.Random(seed)
    templates = max(1, int(count * unique_share))
    for i in range(count):
        t = rng.randrange(templates) if unique_share < 1 else i
        service = SERVICES[t % len(SERVICES)]
        kind = _KINDS[t % len(_KINDS)]
        doc: dict[str, Any] = {
            "id": f"bench-{seed}-{i}", "kind": kind, "source": "otel" if kind != "alert" else "alertmanager",
            "occurred_at": (start + spacing * i if start else datetime.now(timezone.utc)).isoformat(),
            "service": service,
            "host": f"node-{t % 6}", "severity": "error" if kind != "alert" else "critical",
            "title": f"operation {t} failed: code={rng.randrange(600)} after {rng.randrange(5000)} ms "
                     f"(request {rng.getrandbits(64):016x})",
            "labels": {"template": str(t)},
        }
        if domains:
            doc["labels"][DOMAIN_LABEL] = domains[i % len(domains)]
        if kind == "alert":
            doc["fingerprint"] = f"fp-{t}-{rng.randrange(3)}"
            doc["title"] = f"Alert{t} on {service}"
        yield kind, scope_for(domain_of(doc["labels"])), json.dumps(doc).encode()


# The latency run's producer batches up to this long (Kafka's ``linger.ms``). Each event's
# latency counts from before its send, so the wait counts against triage. Shorter, the
# embedded Tansu 0.6's in-memory engine falls behind within a minute at 1,000 events/s: it
# slows with the number of batches a partition holds, and at 5 ms most batches hold one or
# two events (a bare consumer's p99 reached 24 s in the last quarter of 60 s; at 20 ms it
# stays near 40 ms: docs/benchmarks.md, "Latency at 1,000 events/s over 60 s").
LIVE_LINGER_MS = 20


def produce_events(settings: Settings, events: Iterable[tuple[str, str, bytes]],
                   rate: float | None = None, linger_ms: int = 5) -> tuple[int, float]:
    """Produce to the topic of each event's kind; at ``rate`` events/s if given. Returns
    (count, seconds)."""
    topics = settings.topic_map
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks=1, linger_ms=linger_ms,
                             batch_size=512 * 1024, client_id="triage-bench")
    started = time.perf_counter()
    n = 0
    for n, (kind, key, value) in enumerate(events, start=1):
        if rate:
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        producer.send(topics.for_kind(kind), key=key.encode(), value=value)
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    return n, seconds


def _produce_live(settings: Settings, count: int, unique_share: float, rate: float) -> None:
    """The latency run's producer (in its own process): events stamped as they are sent."""
    # The load generator must not pause: with the modules it imports (about 130,000
    # objects) in view, each full collection of its own stopped sending for about 100 ms,
    # once or twice a run, and the events stamped meanwhile counted the pause as triage's
    # latency (docs/benchmarks.md, "Why the hot path is built as it is").
    gc.freeze()
    produce_events(settings, synthetic_events(count, unique_share, start=None, spacing=timedelta(0)), rate=rate,
                   linger_ms=LIVE_LINGER_MS)


class _Timed:
    """Wraps the consumer's handler (the pipeline): after each batch is stored, how long
    since its events occurred, and how long since the consumer decoded them (the part
    of the latency spent in triage, not in the producer and the broker)."""

    def __init__(self, pipeline: Handler) -> None:
        self.pipeline = pipeline
        self.latencies_ms: list[float] = []
        self.in_triage_ms: list[float] = []
        self.decoded_at: dict[str, float] = {}
        self.handled = 0
        self.rss_samples: list[tuple[int, float]] = []
        self.child: int | None = None   # the correlator process, whose RSS is sampled too
        self.child_rss_samples: list[float] = []

    def decoding(self, decoder: Decoder) -> Decoder:
        def decode(topic: str, value: bytes | None) -> Decoded:
            decoded = decoder(topic, value)
            now = time.time()
            for event in decoded[0]:
                self.decoded_at[event.id] = now
            return decoded
        return decode

    def __call__(self, events: list[Event], edges: list[Any]) -> Any:
        result = self.pipeline(events, edges)
        self._stored(events)
        return result

    def _stored(self, events: Sequence[Event]) -> None:
        now = datetime.now(timezone.utc)
        self.latencies_ms.extend((now - e.occurred_at).total_seconds() * 1000 for e in events)
        stored = now.timestamp()
        self.in_triage_ms.extend((stored - self.decoded_at.pop(e.id, stored)) * 1000 for e in events)
        before, self.handled = self.handled, self.handled + len(events)
        if self.handled // 100_000 > before // 100_000:
            self.rss_samples.append((self.handled, current_rss_mib()))
            if self.child is not None:
                self.child_rss_samples.append(rss_of_mib(self.child))


class _TimedPipelined(_Timed):
    """``_Timed`` for a ``Pipelined`` handler: a batch's events are stored when its
    ``result`` says so."""

    pipeline: Pipelined

    def submit(self, events: list[Event], edges: list[Any]) -> Any:
        return self.pipeline.submit(events, edges), events

    def result(self, ticket: Any) -> Any:
        inner, events = ticket
        result = self.pipeline.result(inner)
        self._stored(events)
        return result


def current_rss_mib() -> float:
    return rss_of_mib("self")


def rss_of_mib(pid: int | str) -> float:
    """Resident memory of process ``pid`` now, in MiB; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return 0.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _quarters(values: list[float]) -> list[float]:
    """p99 of each quarter of the run (after the warm-up), in the order events were stored."""
    n = len(values)
    return [round(_percentile(values[i * n // 4:(i + 1) * n // 4], 0.99), 1) for i in range(4)] if n >= 4 else []


def _against(settings: Settings, broker: EmbeddedBroker, tmp: Path) -> Settings:
    """The run's settings: its own broker, and its own SQLite file unless a database was named."""
    database_url = settings.database_url if "database_url" in settings.model_fields_set \
        else f"sqlite:///{tmp / 'bench.db'}"
    return settings.model_copy(update={
        "kafka_bootstrap_servers": broker.bootstrap_servers, "database_url": database_url,
        "kafka_session_timeout_ms": 6000, "kafka_heartbeat_interval_ms": 1000, "topic_incidents": None})


def run_bench(settings: Settings, *, events: int, unique_share: float, rate: float | None,
              spacing_ms: float = 10.0, progress: bool = True) -> dict[str, Any]:
    """End to end through a real broker: produce, then consume (throughput), or produce at a
    fixed rate while consuming (latency)."""
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp, EmbeddedBroker() as broker:
        settings = _against(settings, broker, Path(tmp))
        database_url = settings.database_url
        runtime = Runtime.build(settings)
        consumer = runtime.make_consumer()
        timed = _TimedPipelined(consumer.handler) if isinstance(consumer.handler, Pipelined) \
            else _Timed(consumer.handler)
        timed.child = runtime.correlator.pid if runtime.correlator is not None else None
        consumer.handler = timed
        consumer.decoder = timed.decoding(consumer.decoder)
        while not consumer.totals.assigned:  # group join is start-up, not throughput
            consumer.poll_once()
        figures: dict[str, Any] = {"events": events, "unique_share": unique_share, "spacing_ms": spacing_ms,
                                   "database": database_url.split(":", 1)[0]}
        if rate:
            thread = threading.Thread(target=consumer.run, args=(runtime.stop,))
            thread.start()
            # The producer is another process, as it is in production: in this one it
            # would compete with the consumer for the interpreter lock.
            producer = multiprocessing.get_context("spawn").Process(
                target=_produce_live, args=(settings, events, unique_share, rate), daemon=True)
            producer.start()
            producer.join()
            produced = events if producer.exitcode == 0 else 0
            deadline = time.monotonic() + 60
            while timed.handled < produced and time.monotonic() < deadline:
                time.sleep(0.05)
            runtime.stop.set()
            thread.join(60)
            warm = timed.latencies_ms[len(timed.latencies_ms) // 10:]  # the first tenth warms caches
            inside = timed.in_triage_ms[len(timed.in_triage_ms) // 10:]
            figures.update(rate=rate, p50_ms=round(_percentile(warm, 0.5), 1),
                           p99_ms=round(_percentile(warm, 0.99), 1), max_ms=round(max(warm, default=0), 1),
                           in_triage_p50_ms=round(_percentile(inside, 0.5), 1),
                           in_triage_p99_ms=round(_percentile(inside, 0.99), 1),
                           # Whether the run slows down as it goes (the broker, the store).
                           p99_ms_per_quarter=_quarters(warm), in_triage_p99_ms_per_quarter=_quarters(inside))
        else:
            produced, produce_s = produce_events(settings, _past_stream(events, unique_share, spacing_ms))
            pipeline = timed.pipeline
            clocks = [consumer.stages, *([pipeline.stages] if hasattr(pipeline, "stages") else [])]
            for clock in clocks:
                clock.reset()
            backends = database_backends(runtime.store.engine)
            child = runtime.correlator.pid if runtime.correlator is not None else None
            others_before = process_cpu_s(broker.pid or 0), total_cpu_s(backends), process_cpu_s(child or 0)
            started, cpu_before = time.perf_counter(), time.process_time()
            thread = threading.Thread(target=consumer.run, args=(runtime.stop,))
            thread.start()
            while timed.handled < produced:
                time.sleep(0.05)
            consume_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_before
            broker_s = process_cpu_s(broker.pid or 0) - others_before[0]
            server_s = total_cpu_s(backends) - others_before[1]
            if child is not None:
                # Two processes: the one that fetches and decodes (this one), and the
                # correlating one, which must be single per domain.
                child_s = process_cpu_s(child) - others_before[2]
                figures.update(correlator_process=True, fetching_process_cpu_us_per_event=us_per_event(cpu_s, produced),
                               correlating_process_cpu_us_per_event=us_per_event(child_s, produced),
                               correlating_process_peak_rss_mib=peak_rss_of_mib(child))
                cpu_s += child_s
            runtime.stop.set()
            thread.join(60)
            figures.update(produce_events_per_s=round(produced / produce_s),
                           end_to_end_events_per_s=round(produced / consume_s), consume_seconds=round(consume_s, 2),
                           **_cpu_figures(cpu_s, produced), **stage_figures(clocks, cpu_s, produced),
                           broker_cpu_us_per_event=us_per_event(broker_s, produced),
                           database_server_cpu_us_per_event=us_per_event(server_s, produced) if backends else None)
        stats = runtime.store.noise_stats().total
        figures.update(handled=timed.handled, incidents=stats.incidents, suppressed=stats.suppressed,
                       batches=consumer.totals.batches, peak_rss_mib=round(peak_rss_mib(), 1),
                       rss_mib_per_100k=[round(r, 1) for _, r in timed.rss_samples])
        if timed.child is not None:
            figures.update(correlating_process_rss_mib_per_100k=[round(r, 1) for r in timed.child_rss_samples])
        runtime.close()
    return figures


def domains_for_members(members: int, partitions: int) -> list[str]:
    """One correlation domain per member, named so that the range assignor gives each to a
    different member: domain i is keyed to partition ``i * partitions // members``, the
    first of member i's range (the default partitioner: murmur2 of the scope key)."""
    wanted = [i * partitions // members for i in range(members)]
    found: dict[int, str] = {}
    for n in range(10_000):
        name = f"bench-{n}"
        partition = (murmur2(scope_for(name).encode()) & 0x7FFFFFFF) % partitions
        if partition in wanted and partition not in found:
            found[partition] = name
            if len(found) == members:
                return [found[p] for p in wanted]
    raise ValueError(f"no domain names found for {members} members over {partitions} partitions")


def _member(settings: Settings, ready: Any, go: Any, done: Any, report: Any) -> None:
    """One group member of ``run_group_bench`` (its own process, as in production)."""
    runtime = Runtime.build(settings)
    consumer = runtime.make_consumer()   # loads the sentence model: start-up, not throughput
    ready.put(None)
    go.wait()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    thread = threading.Thread(target=consumer.run, args=(runtime.stop,))
    thread.start()
    assigned_at = None
    while not done.is_set():
        if assigned_at is None and consumer.totals.assigned:
            assigned_at = time.time()
        done.wait(0.01)
    runtime.stop.set()
    thread.join(60)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report.put({"assigned_at": assigned_at, "cpu_s": round(usage.ru_utime + usage.ru_stime - cpu_before, 2),
                "events": consumer.totals.events, "batches": consumer.totals.batches,
                "partitions": sorted({tp.partition for tp in consumer.totals.assigned}),
                "peak_rss_mib": round(peak_rss_mib(), 1)})
    runtime.close()


def run_group_bench(settings: Settings, *, events: int, unique_share: float, members: int,
                    spacing_ms: float = 10.0) -> dict[str, Any]:
    """Throughput of ``members`` consumer processes in one group, the scale-out of
    docs/architecture.md: the events are spread over one correlation domain per member, each
    domain keyed to a different member's partitions. All events are produced first; the
    clock runs from the first member holding partitions to the last event stored, so the
    group's join and any rebalance count against the figure."""
    from triage.store import SqlStore

    domains = domains_for_members(members, settings.topic_partitions)
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp, EmbeddedBroker() as broker:
        settings = _against(settings, broker, Path(tmp))
        ensure_topics(settings.kafka_bootstrap_servers, [*settings.topics, settings.topic_dlq],
                      settings.topic_partitions)
        store = SqlStore.from_url(settings.database_url)   # migrates once, before the members start
        produced, produce_s = produce_events(settings, _past_stream(events, unique_share, spacing_ms, domains))
        context = multiprocessing.get_context("spawn")
        ready, report = context.Queue(), context.Queue()
        go, done = context.Event(), context.Event()
        procs = [context.Process(target=_member, args=(settings, ready, go, done, report), daemon=True)
                 for _ in range(members)]
        for proc in procs:
            proc.start()
        for _ in procs:
            ready.get(timeout=300)
        go.set()
        while (stored := store.count_events()) < produced and all(p.is_alive() for p in procs):
            time.sleep(0.05)
        finished = time.time()
        done.set()
        if stored < produced:
            for proc in procs:
                proc.kill()
            raise RuntimeError(f"a member died: {stored} of {produced} events stored")
        reports = [report.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(30)
        stats = store.noise_stats().total
        store.close()
    started = min(r["assigned_at"] for r in reports if r["assigned_at"] is not None)
    return {"events": events, "unique_share": unique_share, "spacing_ms": spacing_ms,
            "database": settings.database_url.split(":", 1)[0], "members": members, "domains": domains,
            "produce_events_per_s": round(produced / produce_s),
            "end_to_end_events_per_s": round(produced / (finished - started)),
            "consume_seconds": round(finished - started, 2), "incidents": stats.incidents,
            "suppressed": stats.suppressed,
            "per_member": [{k: r[k] for k in ("partitions", "events", "batches", "cpu_s", "peak_rss_mib")} for r in reports]}
