"""The embedded broker alone, without triage: how fast and how promptly a bare kafka-python
consumer reads from Tansu. A floor for `triage bench` (docs/benchmarks.md, "The embedded
broker alone").

    python tools/broker_probe.py latency [--rate 1000] [--fetch-wait-ms 50] [--messages 5000] [--linger-ms 20]
    python tools/broker_probe.py read [--messages 600000]
    python tools/broker_probe.py clients [--messages 200000]

latency: a producer process sends 400-byte messages round-robin to 3 topics of 4
partitions at --rate, batching up to --linger-ms as the latency bench's producer does;
the consumer (polling for 10 ms at a time, as triage's does: ``ConsumerConfig.poll_timeout_ms``)
reports p50/p99 from each message's create timestamp to the poll that returned it, overall (the first fifth left out) and per quarter of the
run (whether the broker slows down as its partitions grow). read: produces --messages, then reports the consumer's
messages/s per 100,000 read, and stops if a poll stays empty for 10 s. clients: produces
--messages of 450 bytes (a bench event's size), then reads them all with kafka-python and
with confluent-kafka (librdkafka, a C client; `pip install confluent-kafka` first), twice
each, alternately, each from the beginning of its partitions (assigned, no group), and
reports each client's messages/s and its process's CPU per message: what a C client
would take off a consumer's fetch.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from triage.broker import EmbeddedBroker
from triage.evaluation.bench import LIVE_LINGER_MS
from triage.ingest.kafka_admin import ensure_topics

TOPICS = ["probe-a", "probe-b", "probe-c"]
PARTITIONS = 4
_PRODUCE = """
import sys, time
from kafka import KafkaProducer
servers, topics, count, rate, linger = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
p = KafkaProducer(bootstrap_servers=servers, linger_ms=linger)
t0 = time.time()
for i in range(count):
    delay = t0 + i / rate - time.time()
    if delay > 0:
        time.sleep(delay)
    p.send(topics[i % len(topics)], key=b"global", value=b"x" * 400)
p.flush()
"""


def consumer(servers: str, fetch_wait_ms: int) -> KafkaConsumer:
    c = KafkaConsumer(*TOPICS, bootstrap_servers=servers, group_id="probe", auto_offset_reset="earliest",
                      enable_auto_commit=False, max_poll_records=2000, fetch_max_wait_ms=fetch_wait_ms,
                      session_timeout_ms=6000, heartbeat_interval_ms=1000)
    while not c.assignment():
        c.poll(100)
    c.seek_to_beginning()   # what the polls above returned is read again, not lost
    return c


def latency(servers: str, rate: float, fetch_wait_ms: int, count: int = 5000, linger_ms: int = LIVE_LINGER_MS) -> None:
    c = consumer(servers, fetch_wait_ms)
    producer = subprocess.Popen([sys.executable, "-c", _PRODUCE, servers, ",".join(TOPICS), str(count), str(rate),
                                 str(linger_ms)])
    lags: list[float] = []
    while len(lags) < count:
        records = c.poll(timeout_ms=10)
        now_ms = time.time() * 1000
        lags += [now_ms - m.timestamp for msgs in records.values() for m in msgs]
    producer.wait()
    def p50_p99(values: list[float]) -> str:
        ordered = sorted(values)
        return f"p50 {ordered[len(ordered) // 2]:.1f} ms, p99 {ordered[int(len(ordered) * 0.99)]:.1f} ms"

    print(f"fetch wait {fetch_wait_ms} ms, linger {linger_ms} ms, {rate:.0f} msg/s: {p50_p99(lags[count // 5:])}")
    quarter = len(lags) // 4
    for k in range(4):
        print(f"  quarter {k + 1}: {p50_p99(lags[k * quarter:(k + 1) * quarter])}")


def produce(servers: str, messages: int, size: int) -> None:
    """``messages`` of ``size`` bytes, round-robin over the topics, as fast as they go."""
    p = KafkaProducer(bootstrap_servers=servers, linger_ms=5, batch_size=512 * 1024)
    for i in range(messages):
        p.send(TOPICS[i % len(TOPICS)], key=b"global", value=b"x" * size)
    p.flush()


def read(servers: str, messages: int) -> None:
    produce(servers, messages, 400)
    c = consumer(servers, 50)
    n, mark, started, idle_since = 0, 100_000, time.perf_counter(), time.monotonic()
    while n < messages:
        got = sum(len(v) for v in c.poll(timeout_ms=1000, max_records=2000).values())
        n += got
        if got:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > 10:
            print(f"stalled: no message for 10 s after {n} of {messages}")
            return
        if n >= mark:
            now = time.perf_counter()
            print(f"{n}: {100_000 / (now - started):.0f} msg/s")
            started, mark = now, mark + 100_000
    print(f"read all {messages}")


def clients(servers: str, messages: int) -> None:
    try:
        import confluent_kafka
    except ImportError:
        sys.exit("confluent-kafka is not installed: `pip install confluent-kafka` (a measuring aid, not a dependency)")
    produce(servers, messages, 450)
    for client in ("kafka-python", "confluent-kafka") * 2:
        n = 0
        if client == "kafka-python":
            c = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, max_poll_records=2000,
                              fetch_max_wait_ms=50)
            c.assign([TopicPartition(t, q) for t in TOPICS for q in range(PARTITIONS)])
            c.seek_to_beginning()
            started, cpu = time.perf_counter(), time.process_time()
            while n < messages:
                n += sum(1 for batch in c.poll(timeout_ms=1000, max_records=2000).values()
                         for m in batch if m.value is not None)
        else:
            c = confluent_kafka.Consumer({"bootstrap.servers": servers, "group.id": "probe-clients",
                                          "enable.auto.commit": False, "fetch.wait.max.ms": 50})
            c.assign([confluent_kafka.TopicPartition(t, q, confluent_kafka.OFFSET_BEGINNING)
                      for t in TOPICS for q in range(PARTITIONS)])
            started, cpu = time.perf_counter(), time.process_time()
            while n < messages:
                n += sum(1 for m in c.consume(num_messages=2000, timeout=1.0)
                         if m.error() is None and m.value() is not None)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        c.close()
        print(f"{client}: {n / seconds:,.0f} messages/s, {cpu_s / n * 1e6:.2f} us of CPU per message")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["latency", "read", "clients"])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--fetch-wait-ms", type=int, default=50)
    parser.add_argument("--linger-ms", type=int, default=LIVE_LINGER_MS,
                        help="the latency producer's linger (default: the latency bench's producer's)")
    parser.add_argument("--messages", type=int,
                        help="how many to send (default: 5,000 for latency, 600,000 for read, 200,000 for clients)")
    args = parser.parse_args()
    with EmbeddedBroker() as broker:
        ensure_topics(broker.bootstrap_servers, TOPICS, PARTITIONS)
        if args.mode == "latency":
            latency(broker.bootstrap_servers, args.rate, args.fetch_wait_ms, args.messages or 5000, args.linger_ms)
        elif args.mode == "clients":
            clients(broker.bootstrap_servers, args.messages or 200_000)
        else:
            read(broker.bootstrap_servers, args.messages or 600_000)


if __name__ == "__main__":
    main()
