"""Produce a JSONL file of events into Kafka, one topic per kind, keyed by correlation scope."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kafka import KafkaProducer
from tqdm import tqdm

from triage.domain.scope import scope_for
from triage.domain.event import domain_named
from triage.settings import Settings


@dataclass(frozen=True)
class ReplayResult:
    produced: int
    by_topic: dict[str, int]


def open_text(path: Path) -> IO[str]:
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def read_lines(path: Path) -> Iterator[bytes]:
    with open_text(path) as fh:
        for line in fh:
            if line.strip():
                yield line.rstrip("\n").encode()


def route(value: bytes, settings: Settings) -> tuple[str, bytes]:
    """Topic and message key of one line. Lines that are not JSON still go out (to the
    alerts topic) so that the consumer dead-letters them with a reason."""
    try:
        doc = json.loads(value)
    except ValueError:
        return settings.topic_alerts, scope_for().encode()
    if not isinstance(doc, dict):
        return settings.topic_alerts, scope_for().encode()
    domain = domain_named(doc.get("labels"), settings.domain_labels)
    return settings.topic_map.for_kind(doc.get("kind")), scope_for(domain).encode()


def replay(path: Path, settings: Settings, *, progress: bool = True, limit: int | None = None) -> ReplayResult:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                             linger_ms=20, batch_size=256 * 1024, compression_type=None,
                             client_id="triage-replay")
    by_topic: dict[str, int] = {}
    total = sum(1 for _ in read_lines(path)) if progress else None
    if limit is not None and total is not None:
        total = min(total, limit)
    try:
        with tqdm(total=total, unit="ev", desc=f"replay {path.name}", disable=not progress) as bar:
            for n, value in enumerate(read_lines(path)):
                if limit is not None and n >= limit:
                    break
                topic, key = route(value, settings)
                producer.send(topic, key=key, value=value)
                by_topic[topic] = by_topic.get(topic, 0) + 1
                bar.update(1)
        producer.flush()
    finally:
        producer.close()
    return ReplayResult(produced=sum(by_topic.values()), by_topic=by_topic)
