"""Process wiring: build the store, pipeline, consumer and API from Settings, run them, stop them.

What keeps a process running, and what stops it:

- Every background part (the consumer, the outbox sender, the auto-pause ticker, the
  families job, the metrics server of ``triage consume``) survives its dependency
  failing: it reports the failure to the process's ``Health`` (``/readyz`` 503,
  ``triage_component_up`` 0), backs off and tries again, and reports ``ok`` once a turn
  works (``triage.domain.health``). A database or broker that is down is never a reason to exit,
  and neither is a bug that fails one part's turns: the other parts keep working.
- A process that cannot run at all stops and exits non-zero, so a supervisor's
  restart-on-failure acts: the API socket cannot be bound, a thread ended that should
  not have (``Runtime.fail``). A signal (SIGTERM, SIGINT) stops it cleanly, exit code 0.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import httpx
import uvicorn
from fastapi import FastAPI

from triage.api import create_app
from triage.services.catalog import load_catalog_file, CatalogCache
from triage.services.families_job import FamiliesCache, FamiliesJob
from triage.domain.health import DEPENDENCY_ERRORS, Backoff, Health, describe, report_failure, run_loop
from triage.ingest.kafka import BatchConsumer, ConsumerConfig, Handler, decoder_for
from triage.correlator_process import CorrelatorProcess
from triage.ingest.kafka_admin import BrokerProbe, ensure_topics
from triage.models.embedder import Embedder, make_embedder
from triage.models.topology import ServiceGraph, host_zones
from triage.services.pipeline import Pipeline
from triage.paging.sender import KafkaTarget, OutboxSender, PagerDutyTarget, Target, WebhookTarget
from triage.settings import Settings
from triage.ingest.sink import KafkaEventSink
from triage.store import SqlStore
from triage.store.api_keys import ApiKeyStore
from triage.paging.held_pages import release_held_pages
from triage.services.suggestions import SuggestionService
from triage.models.triage_context import TriageContext
from triage.services.triage_context import TriageContextService
from triage.services.telemetry import Metrics

log = logging.getLogger(__name__)


class ExposureError(RuntimeError):
    pass


class ListenError(RuntimeError):
    """The API's address cannot be bound: the process cannot do its work, and says why."""


class Interrupted(RuntimeError):
    """A signal came while the process was still waiting for its database at start-up."""


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
    shorter, with the same throughput (docs/benchmarks.md, "Why the hot path is built as it
    is")."""
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
    embedder: Embedder   # the process's one embedder (``Settings.embedder``), for everything that embeds
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _servers: list[uvicorn.Server] = field(default_factory=list)
    _probe: BrokerProbe | None = None
    _sink: KafkaEventSink | None = None
    _metrics_server: WSGIServer | None = None
    consumer: BatchConsumer | None = None
    correlator: CorrelatorProcess | None = None   # with TRIAGE_CORRELATOR_PROCESS: the child
    api_port: int | None = None
    # Why the process is stopping, when it is a failure rather than a signal.
    failure: str | None = None
    _api_open: bool | None = None   # the start-up decision of check_api_exposure

    @classmethod
    def build(cls, settings: Settings, *, stop: threading.Event | None = None,
              checkpoints: bool = True, model_threads: int | None = None) -> "Runtime":
        """With ``stop``, a database server that does not answer yet is waited for (with
        backoff, until ``stop``: then ``Interrupted``): a process started beside a
        database that is still starting, or restarting, comes up when it does. A SQLite
        file that cannot be opened is a mistake to report, not a server to wait for.

        Raises ``EmbedderUnavailable`` (before anything else) when the embedder the
        settings name cannot run here: the process would decide differently without it.
        ``checkpoints``: whether this process's store checkpoints a SQLite log
        (``SqlStore``); ``model_threads``: the sentence model's threads (``make_embedder``)."""
        embedder = make_embedder(settings.embedder, threads=model_threads)
        configure_tracing(settings)
        if stop is not None and not settings.database_url.startswith("sqlite"):
            store = open_store(settings.database_url, stop)
        else:
            store = SqlStore.from_url(settings.database_url, checkpoints=checkpoints)
        if settings.catalog_file is not None:
            try:   # a malformed file stops the process here: CatalogFileError names the line and field
                apply_catalog_file(store, settings.catalog_file, stop)
            except BaseException:
                store.close()
                raise
        return cls(settings=settings, store=store, metrics=Metrics(), embedder=embedder,
                   stop=stop or threading.Event())

    @property
    def health(self) -> Health:
        return self.metrics.health

    # -- pieces ----------------------------------------------------------------------

    def make_pipeline(self) -> Pipeline:
        s = self.settings
        # Load the sentence model now, not inside the first batch (it takes seconds).
        self.embedder.embed(["triage start-up"])
        tune_gc()
        topology = ServiceGraph.from_topology(s.topology_file) if s.topology_file else None
        return Pipeline(self.store, self.embedder, self.metrics, page_targets=s.page_targets,
                        families=FamiliesCache(self.store.engine), topology=topology)

    def make_handler(self) -> Handler:
        """What stores the consumer's batches: the pipeline in this process, or with
        ``correlator_process`` a child process holding it (``triage.correlator_process``)."""
        if not self.settings.correlator_process:
            return self.make_pipeline()
        if self.correlator is None:
            self.correlator = CorrelatorProcess(self.settings, correlating_pipeline, self.metrics, self.embedder,
                                                event_rows=self.store.event_rows)
            tune_gc()   # this process decodes every event too, and has just loaded the model
        return self.correlator

    def connect_consumer(self, pipeline: Handler) -> BatchConsumer:
        """The topics (created if missing) and a consumer on them: needs the broker."""
        s = self.settings
        extra = [s.topic_incidents] if s.topic_incidents else []
        ensure_topics(s.kafka_bootstrap_servers, [*s.topics, s.topic_dlq, *extra], s.topic_partitions)
        decoder = decoder_for(s.topic_map.kinds(),
                              s.domain_labels, s.limits)
        self.consumer = BatchConsumer(consumer_config(s), pipeline, decoder=decoder, observer=self.metrics,
                                      probe=self.store.probe)
        if isinstance(pipeline, CorrelatorProcess):
            # Decode the next batch, and prepare it for the child, while the child stores this one.
            consumer, child = self.consumer, pipeline
            pipeline.meanwhile = lambda: child.prepare(consumer.fetch_ahead())
        return self.consumer

    def make_consumer(self) -> BatchConsumer:
        return self.connect_consumer(self.make_handler())

    def make_app(self) -> FastAPI:
        s = self.settings
        self._probe = BrokerProbe(s.kafka_bootstrap_servers)
        self._sink = KafkaEventSink(s.kafka_bootstrap_servers, s.topic_map, s.domain_labels)
        return create_app(self.store, embedder=self.embedder, ready_checks={"store": self.store.ping, "broker": self._probe},
                          registry=self.metrics.registry, sink=self._sink,
                          pagerduty_secrets=s.pagerduty_secrets, max_body_bytes=s.max_body_bytes,
                          page_targets=s.page_targets, health=self.metrics.health, limits=s.limits,
                          open_api=bool(self._api_open),  # not decided: closed
                          topology_file=s.topology_file, team_of=CatalogCache(self.store.engine).team_of)

    def check_api_exposure(self) -> bool:
        """Decide, once per process, whether the API is open (no key needed): only if no API
        key was ever created (revoked ones count) and it listens on loopback. Raises
        ``ExposureError`` for an open API on any other address. Once a key has existed the
        API stays closed, even with every key revoked; an open API closes for good when the
        first key is created (``triage.api.auth``)."""
        if self._api_open is not None:
            return self._api_open
        keys = ApiKeyStore(self.store.engine)
        if keys.any_created():
            if not keys.any_active():
                log.warning("every API key is revoked: the API refuses every call that needs a key "
                            "until one is created with `triage keys create`")
            self._api_open = False
            return False
        if not is_loopback(self.settings.api_host):
            raise ExposureError(
                f"no API key was ever created, so the API would be open to anyone on {self.settings.api_host}: "
                "create one with `triage keys create --scope admin`, or listen on 127.0.0.1")
        log.warning("the API is open (no API key was ever created); listening on loopback only. It closes for "
                    "good when the first key is created: `triage keys create --scope read|ingest|admin`.")
        self._api_open = True
        return True

    # -- running ---------------------------------------------------------------------

    def start_consumer(self) -> None:
        """The pipeline now (it loads the sentence model), the consumer in a thread that
        connects to the broker and, whenever the consumer fails (the broker is down at
        start, or its client raises), reports ``consumer`` failing and starts a new one
        after a backoff. Its handler's failures (a database outage) are retried inside
        ``BatchConsumer`` without ending it. What was not committed is read again by the
        new consumer, and the store skips what it holds."""
        pipeline = self.make_handler()
        self.health.register("consumer")
        self._spawn("consumer", lambda: self._run_consumer(pipeline))

    def _run_consumer(self, pipeline: Handler, backoff: Backoff | None = None) -> None:
        backoff = backoff or Backoff(first_s=1.0, max_s=30.0)
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                consumer = self.connect_consumer(pipeline)
                self.health.ok("consumer")
                consumer.run(self.stop)
            except Exception as exc:  # noqa: BLE001 - a consumer that fails is replaced (docstring)
                report_failure(self.health, "consumer", exc)
                if time.monotonic() - started > backoff.max_s:
                    backoff.reset()   # it ran a while: a new failure, not the same one again
                self.stop.wait(backoff.next())

    def start_api(self) -> int:
        """Bind the API socket now (so the port is known, also for port 0) and serve in a thread."""
        self.check_api_exposure()
        sock = socket.socket(socket.AF_INET6 if ":" in self.settings.api_host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.settings.api_host, self.settings.api_port))
        except OSError as exc:
            sock.close()
            raise ListenError(f"cannot listen on {self.settings.api_host}:{self.settings.api_port}: "
                              f"{exc.strerror or exc}") from exc
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
        sender = OutboxSender(self.store, targets, s.api_url, health=self.health,
                              suggest=SuggestionService(self.store).for_incident,
                              triage=_never_failing(TriageContextService(
                                  self.store, zones=host_zones(s.topology_file) if s.topology_file else None).for_incident),
                              target_health=self.metrics.page_targets, observer=self.metrics)
        self._spawn("sender", lambda: sender.run(self.stop))

    def start_jobs(self) -> None:
        """The consumer's periodic jobs, each in a thread: the auto-pause ticker and the
        alert families fit. Every replica may run them (see their modules)."""
        s = self.settings
        if s.auto_pause_tick_s:
            targets, tick_s = s.page_targets, s.auto_pause_tick_s

            def tick() -> float:
                released = release_held_pages(self.store, targets, datetime.now(timezone.utc))
                if released:
                    self.metrics.pages.inc(len(released))
                    log.info("auto-pause over, paging %s", ", ".join(p.incident_id for p in released))
                return tick_s
            self._spawn("pause-ticker",
                        lambda: run_loop("pause-ticker", self.health, self.stop, tick, first_delay_s=tick_s,
                                         backoff=Backoff(first_s=tick_s, max_s=max(tick_s, 30.0))))
        if s.families_interval_s:
            job = FamiliesJob(s.database_url, s.families_interval_s,
                              holder=f"{socket.gethostname()}:{os.getpid()}", embedder=s.embedder)
            self._spawn("families", lambda: job.run(self.stop, self.health))

    def start_metrics_server(self) -> None:
        """``/metrics`` on ``metrics_port`` (``triage consume``), from a thread that keeps
        trying while the port is taken (a previous process still releasing it): the
        consumer must not wait for its metrics, nor stop without them."""
        if not self.settings.metrics_port:
            return
        from prometheus_client import start_http_server

        s = self.settings
        self.health.register("metrics")

        def serve() -> None:
            backoff = Backoff(first_s=1.0, max_s=30.0)
            while not self.stop.is_set():
                try:
                    self._metrics_server, _ = start_http_server(s.metrics_port, addr=s.api_host,
                                                                registry=self.metrics.registry)
                except OSError as exc:
                    report_failure(self.health, "metrics", exc)
                    self.stop.wait(backoff.next())
                    continue
                self.health.ok("metrics")
                return
        self._spawn("metrics", serve, ends=True)

    def _spawn(self, name: str, target: Callable[[], object], *, ends: bool = False) -> None:
        """Run ``target`` in a thread. Its loops handle their own failures (and keep
        going); if the thread ends anyway before ``stop``, by an exception or by
        returning when it should not (``ends`` says it may), the process cannot do its
        work: it stops, as a failure (``fail``)."""
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - whatever ended it (SystemExit too): stop
                self.fail(f"the {name} thread died: {describe(exc)}", exc)
                return
            if not ends and not self.stop.is_set():
                self.fail(f"the {name} thread ended on its own")

        thread = threading.Thread(target=run, name=f"triage-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def fail(self, reason: str, exc: BaseException | None = None) -> None:
        """Stop the process as a failure: ``wait`` returns 1, and the CLI exits with it."""
        if self.failure is None:
            self.failure = reason
        log.error("%s; stopping the process", reason, exc_info=exc)
        self.stop.set()

    def wait(self) -> int:
        """Block until a signal or a failure asks to stop; the exit code: 0 after a
        signal, 1 after a failure."""
        while not self.stop.wait(0.5):
            pass
        return 1 if self.failure is not None else 0

    def close(self) -> None:
        self.stop.set()
        for server in self._servers:
            server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=30)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        if self._probe:
            self._probe.close()
        if self._sink:
            self._sink.close()
        if self.correlator is not None:
            self.correlator.close()
        self.store.close()


def correlating_pipeline(settings: Settings) -> tuple[Pipeline, Callable[[], None]]:
    """The pipeline of a correlator process (``triage.correlator_process``), built as a
    consuming process builds its own, and what closes it."""
    # The parent's store, of the same SQLite file, checkpoints its log: off this core.
    # The model runs here only for log templates the miner generalizes: on one thread,
    # not beside a pool that waits between those calls on this process's CPU.
    runtime = Runtime.build(settings, checkpoints=False, model_threads=1)
    pipeline = runtime.make_pipeline()
    # The parent's metrics are the ones served (``CorrelatorProcess`` counts each batch's
    # result there); per-event observations here would be work nobody reads.
    pipeline.metrics = None
    return pipeline, runtime.close


def open_store(url: str, stop: threading.Event) -> SqlStore:
    """``SqlStore.from_url``, tried again with backoff while the database server does not
    answer (logged once when it starts failing, once when it answers); ``Interrupted`` if
    ``stop`` comes first. Any other error (a bad URL, a failed migration) is raised."""
    waiting = Health()   # for its logging: one line per state change
    backoff = Backoff(first_s=1.0, max_s=30.0)
    while True:
        try:
            store = SqlStore.from_url(url)
        except DEPENDENCY_ERRORS as exc:
            waiting.failing("the database", describe(exc))
            if stop.wait(backoff.next()):
                raise Interrupted("stopped while waiting for the database") from exc
            continue
        waiting.ok("the database")
        return store


def apply_catalog_file(store: SqlStore, path: Path, stop: threading.Event | None) -> None:
    """``load_catalog_file``, tried again with backoff while the database does not answer
    (with ``stop``; ``Interrupted`` if it comes first). A malformed file is raised at once."""
    waiting = Health()   # for its logging: one line per state change
    backoff = Backoff(first_s=1.0, max_s=30.0)
    while True:
        try:
            load_catalog_file(store.engine, path)
        except DEPENDENCY_ERRORS as exc:
            if stop is None:
                raise
            waiting.failing("the database (loading the catalog)", describe(exc))
            if stop.wait(backoff.next()):
                raise Interrupted("stopped while waiting for the database") from exc
            continue
        waiting.ok("the database (loading the catalog)")
        return


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


def configure_tracing(settings: Settings) -> None:
    """Install the OpenTelemetry tracer provider the settings ask for (none by default)."""
    if settings.otel_exporter == "none":
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        exporter = OTLPSpanExporter(endpoint=settings.otel_endpoint) if settings.otel_endpoint \
            else OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing: exporting spans with %s", settings.otel_exporter)


def _never_failing(triage: Callable[[str], TriageContext | None]) -> Callable[[str], TriageContext | None]:
    """A page goes out without its triage rather than not at all: an error composing the
    triage context is logged, and the page carries none."""
    def safe(incident_id: str) -> TriageContext | None:
        try:
            return triage(incident_id)
        except Exception:   # noqa: BLE001 - any failure here must not hold a page back
            log.exception("triage context of %s failed; the page goes without it", incident_id)
            return None
    return safe
