"""Process wiring: build the store, pipeline, consumer and API from Settings, run them, stop them."""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from triage.api import create_app
from triage.families import FamiliesCache, FamiliesJob
from triage.ingest.kafka import BatchConsumer, BrokerProbe, ConsumerConfig, decoder_for, ensure_topics
from triage.models.embedder import default_embedder
from triage.models.topology import ServiceGraph
from triage.pipeline import Pipeline
from triage.sender import KafkaTarget, OutboxSender, PagerDutyTarget, Target, WebhookTarget
from triage.settings import Settings
from triage.sink import KafkaEventSink
from triage.store import SqlStore
from triage.store.keys import ApiKeyStore
from triage.store.pauses import release_held_pages
from triage.telemetry import Metrics, configure_tracing

log = logging.getLogger(__name__)


class ExposureError(RuntimeError):
    pass


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def tune_gc() -> None:
    """A batch allocates a few objects per event (the events, their decisions, the rows
    written), all freed when the batch ends; Python's cyclic collector, run every 700
    allocations, kept re-walking the torch and model objects loaded at start-up. Those are
    frozen out of its view (``gc.freeze``) and young collections run every 10,000
    allocations instead. Not rarer: a young collection's pause grows with what it walks,
    and there is real cyclic garbage to walk (kafka-python leaves an exception, its
    traceback and the polling frames, locals included, behind each poll that waits out
    its timeout). At 50,000 a collection paused the consumer for tens of milliseconds,
    most of the p99 latency at 1k events/s; at 10,000 the pauses are several times
    shorter, with the same throughput (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


def consumer_config(settings: Settings) -> ConsumerConfig:
    return ConsumerConfig(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=settings.kafka_group_id,
        topics=settings.topics, dlq_topic=settings.topic_dlq,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        max_poll_records=settings.kafka_max_poll_records, poll_timeout_ms=settings.kafka_poll_timeout_ms,
        max_idle_ms=settings.kafka_max_idle_ms, max_lag_wait_ms=settings.kafka_max_lag_wait_ms,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms, commit_interval_ms=settings.kafka_commit_interval_ms)


@dataclass
class Runtime:
    """What one triage process holds. Build with ``Runtime.build``; ``close`` when done."""

    settings: Settings
    store: SqlStore
    metrics: Metrics
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _servers: list[uvicorn.Server] = field(default_factory=list)
    _probe: BrokerProbe | None = None
    _sink: KafkaEventSink | None = None
    consumer: BatchConsumer | None = None
    api_port: int | None = None

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        configure_tracing(settings)
        return cls(settings=settings, store=SqlStore.from_url(settings.database_url), metrics=Metrics())

    # -- pieces ----------------------------------------------------------------------

    def make_consumer(self) -> BatchConsumer:
        s = self.settings
        # Load the sentence model now, not inside the first batch (it takes seconds).
        default_embedder().embed(["triage start-up"])
        tune_gc()
        extra = [s.topic_incidents] if s.topic_incidents else []
        ensure_topics(s.kafka_bootstrap_servers, [*s.topics, s.topic_dlq, *extra], s.topic_partitions)
        topology = ServiceGraph.from_topology(s.topology_file) if s.topology_file else None
        pipeline = Pipeline(self.store, self.metrics, page_targets=s.page_targets,
                            families=FamiliesCache(self.store.engine), topology=topology)
        decoder = decoder_for({s.topic_alerts: "alerts", s.topic_logs: "logs", s.topic_traces: "traces"},
                              s.domain_labels, s.limits)
        self.consumer = BatchConsumer(consumer_config(s), pipeline, decoder=decoder, observer=self.metrics,
                                      probe=self.store.probe)
        return self.consumer

    def make_app(self) -> FastAPI:
        s = self.settings
        self._probe = BrokerProbe(s.kafka_bootstrap_servers)
        self._sink = KafkaEventSink(s)
        return create_app(self.store, ready_checks={"store": self.store.ping, "broker": self._probe},
                          registry=self.metrics.registry, sink=self._sink,
                          pagerduty_secrets=s.pagerduty_secrets, max_body_bytes=s.max_body_bytes,
                          page_targets=s.page_targets, health=self.metrics.health, limits=s.limits)

    def check_api_exposure(self) -> None:
        """Without API keys the API is open, so it may listen on loopback only."""
        if ApiKeyStore(self.store.engine).any_active():
            return
        if not is_loopback(self.settings.api_host):
            raise ExposureError(
                f"no API keys exist, so the API would be open to anyone on {self.settings.api_host}: "
                "create one with `triage keys create --scope admin`, or listen on 127.0.0.1")
        log.warning("the API is open (no API keys exist); listening on loopback only. "
                    "Create keys with `triage keys create --scope read|ingest|admin`.")

    # -- running ---------------------------------------------------------------------

    def start_consumer(self) -> None:
        consumer = self.make_consumer()
        self._spawn("consumer", lambda: consumer.run(self.stop))

    def start_api(self) -> int:
        """Bind the API socket now (so the port is known, also for port 0) and serve in a thread."""
        self.check_api_exposure()
        sock = socket.socket(socket.AF_INET6 if ":" in self.settings.api_host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.api_host, self.settings.api_port))
        self.api_port = int(sock.getsockname()[1])
        config = uvicorn.Config(self.make_app(), log_level=self.settings.log_level.lower(),
                                access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        self._servers.append(server)
        self._spawn("api", lambda: server.run(sockets=[sock]))
        return self.api_port

    def start_sender(self) -> None:
        """Deliver owed pages in a thread; every replica may run one (rows are leased)."""
        s = self.settings
        client = httpx.Client(timeout=10)
        targets: list[Target] = []
        if s.pagerduty_routing_key:
            targets.append(PagerDutyTarget(s.pagerduty_events_url, s.pagerduty_routing_key.get_secret_value(),
                                           client))
        if s.page_webhook_url:
            secret = s.page_webhook_secret.get_secret_value() if s.page_webhook_secret else ""
            targets.append(WebhookTarget(s.page_webhook_url, secret, client))
        if s.topic_incidents:
            targets.append(KafkaTarget(s.kafka_bootstrap_servers, s.topic_incidents))
        sender = OutboxSender(self.store, targets, s.api_url)
        self._spawn("sender", lambda: sender.run(self.stop))

    def start_jobs(self) -> None:
        """The consumer's periodic jobs, each in a thread: the auto-pause ticker and the
        alert families fit. Every replica may run them (see their modules)."""
        s = self.settings
        if s.auto_pause_tick_s:
            targets = s.page_targets

            def tick() -> None:
                released = release_held_pages(self.store, targets, datetime.now(timezone.utc))
                if released:
                    self.metrics.pages.inc(len(released))
                    log.info("auto-pause over, paging %s", ", ".join(p.incident_id for p in released))
            self._spawn("pause-ticker",
                        lambda: run_every(self.stop, s.auto_pause_tick_s, tick, name="pause ticker"))
        if s.families_interval_s:
            job = FamiliesJob(s.database_url, s.families_interval_s,
                              holder=f"{socket.gethostname()}:{os.getpid()}")
            self._spawn("families", lambda: job.run(self.stop))

    def start_metrics_server(self) -> None:
        if self.settings.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(self.settings.metrics_port, addr=self.settings.api_host,
                              registry=self.metrics.registry)

    def _spawn(self, name: str, target: Callable[[], object]) -> None:
        def run() -> None:
            try:
                target()
            except Exception:
                log.exception("%s thread died; stopping the process", name)
            finally:
                self.stop.set()

        thread = threading.Thread(target=run, name=f"triage-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait(self) -> None:
        """Block until a signal or a dead thread asks to stop."""
        while not self.stop.wait(0.5):
            pass

    def close(self) -> None:
        self.stop.set()
        for server in self._servers:
            server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=30)
        if self._probe:
            self._probe.close()
        if self._sink:
            self._sink.close()
        self.store.close()


def run_every(stop: threading.Event, interval_s: float, job: Callable[[], None], *, name: str) -> None:
    """``job()`` every ``interval_s`` until ``stop``; a database error is logged and the
    next turn tries again (the store may come back)."""
    while not stop.wait(interval_s):
        try:
            job()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("%s failed, retrying: %s", name, exc)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop``: the consumer finishes its batch, commits, and closes."""
    def handler(signum: int, _frame: object) -> None:
        log.info("received %s, finishing the current batch", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
