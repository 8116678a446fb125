"""Self-instrumentation: Prometheus metrics and OpenTelemetry traces of triage itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Container, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from triage.domain.event import Event
from triage.domain.health import Health
from triage.ingest.kafka import DeadLetterReason, RetryCause
from triage.store.records import BatchResult

log = logging.getLogger(__name__)


class Metrics:
    """The process's metrics, on a registry of its own (tests run many in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.health = Health(r)
        # The sender's page targets: shown in /metrics, not in /readyz (see triage.paging.sender).
        self.page_targets = Health(r, metric="triage_page_target", label="target")
        self.events_consumed = Counter("triage_events_consumed_total", "Events decoded from Kafka",
                                       ["topic"], registry=r)
        self.dead_lettered = Counter("triage_events_dead_lettered_total",
                                     "Messages sent to the dead-letter topic, by source topic and reason "
                                     "(decode, validation, too_large, store_refused, failed_alone)",
                                     ["topic", "reason"], registry=r)
        self.batch_retries = Counter("triage_consumer_batch_retries_total",
                                     "Batches the consumer failed to store and retries, by cause "
                                     "(store_unavailable, store_failed)", ["cause"], registry=r)
        self.events_stored = Counter("triage_events_stored_total",
                                     "New events stored (redeliveries excluded)", registry=r)
        self.suppressed = Counter("triage_events_suppressed_total", "Events suppressed as duplicates",
                                  registry=r)
        self.incidents_opened = Counter("triage_incidents_opened_total",
                                        "Incidents opened (by a firing alert, or a noise group an alert joined)",
                                        registry=r)
        self.noise_groups_opened = Counter("triage_noise_groups_opened_total",
                                           "Noise groups opened: logs and spans that page nobody", registry=r)
        self.pages = Counter("triage_pages_due_total", "Events that made a page or page update due",
                             registry=r)
        self.consumer_lag = Gauge("triage_consumer_lag_messages",
                                  "Messages not yet stored on this member's partitions (the broker's end "
                                  "offsets less the first offset not stored)",
                                  registry=r)
        self.batch_seconds = Histogram(
            "triage_batch_processing_seconds", "Correlate + store time of one poll batch", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.batch_size = Histogram("triage_batch_events", "Events in one poll batch", registry=r,
                                    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000))
        # Per event: about 1 µs each, against 65-110 µs of CPU per event in all.
        self.decision_delay = Histogram(
            "triage_event_decision_delay_seconds",
            "From an event's occurred_at to its decision being stored: the source's, Kafka's and triage's "
            "delay together (a replay of old events lands in the top bucket)", registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600))
        self.pages_held = Counter("triage_pages_held_total",
                                  "First pages held by the auto_pause parameter: incidents opened whose page "
                                  "was not due at once", registry=r)
        self.pages_transient = Counter("triage_pages_transient_total",
                                       "Held first pages never sent: every alert of the incident resolved inside "
                                       "the pause", registry=r)
        self.pages_sent = Counter("triage_pages_sent_total", "Pages a page target accepted, by target and action "
                                  "(trigger, resolve)", ["target", "action"], registry=r)
        self.pages_dropped = Counter("triage_pages_dropped_total",
                                     "Pages owed but not delivered, by target and reason (refused: the target "
                                     "answered 4xx; skipped: the incident was over unpaged; no_target, no_incident)",
                                     ["target", "reason"], registry=r)

    # ConsumerObserver (triage.ingest.kafka)
    def batch_stored(self, events: Sequence[Event], result: BatchResult, decided: Container[str] | None = None,
                     seconds: float | None = None) -> None:
        """A batch through the store: its counts, and each decided event's delay from its own
        time to now (``decided``: the ids decided in this batch; redeliveries were decided
        before; None: all of ``events``)."""
        if seconds is not None:
            self.batch_seconds.observe(seconds)
        self.batch_size.observe(len(events))
        self.events_stored.inc(result.stored)
        self.suppressed.inc(result.suppressed)
        self.incidents_opened.inc(result.incidents_opened)
        self.noise_groups_opened.inc(result.noise_groups_opened)
        self.pages.inc(result.notified)
        self.pages_held.inc(result.pages_held)
        self.pages_transient.inc(result.pages_transient)
        stored_at = time.time()
        for event in events:
            if decided is None or event.id in decided:
                self.decision_delay.observe(max(0.0, stored_at - event.occurred_at.timestamp()))

    def batch_decoded(self, topic: str, ok: int) -> None:
        self.events_consumed.labels(topic).inc(ok)

    def message_dead_lettered(self, topic: str, reason: DeadLetterReason) -> None:
        self.dead_lettered.labels(topic, reason.value).inc()

    def batch_retried(self, cause: RetryCause) -> None:
        self.batch_retries.labels(cause.value).inc()

    def stalled(self, reason: str) -> None:
        self.health.failing("consumer", reason)

    def flowing(self) -> None:
        self.health.ok("consumer")

    def lag(self, messages: int) -> None:
        self.consumer_lag.set(messages)

    # DeliveryObserver (triage.paging.sender)
    def page_sent(self, target: str, action: str) -> None:
        self.pages_sent.labels(target, action).inc()

    def page_dropped(self, target: str, reason: str) -> None:
        self.pages_dropped.labels(target, reason).inc()
