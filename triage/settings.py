"""Every setting triage reads, in one frozen object.

Settings are built once at process start (from ``TRIAGE_*`` environment
variables, then CLI flags on top) and passed down; nothing reads the
environment at import time or deep inside a layer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, FilePath, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from triage.domain.event import Limits

from triage.ingest.topics import Topics
from triage.models.mapping import MappingRule, parse_rules

class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", frozen=True, extra="forbid")

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_group_id: str = "triage"
    topic_alerts: str = "alerts"
    topic_logs: str = "logs"
    topic_traces: str = "traces"
    topic_dlq: str = "triage.dlq"
    topic_partitions: int = Field(4, ge=1, description="partitions when triage creates a topic")
    kafka_session_timeout_ms: int = Field(10_000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(3_000, ge=100)
    kafka_max_poll_records: int = Field(2_000, ge=1)
    # Short: see ``ConsumerConfig.poll_timeout_ms`` (a longer wait lets kafka-python sleep
    # 100 ms with records arriving).
    kafka_poll_timeout_ms: int = Field(10, ge=1, description="how long one poll may block with nothing to release")
    # Tansu (the embedded broker) holds a fetch for its whole wait even when data arrives,
    # so this is its latency floor; Apache Kafka answers as soon as data arrives, and
    # there the wait only sets how often an idle consumer asks (deploy/ uses 500).
    kafka_fetch_max_wait_ms: int = Field(10, ge=1, description="how long the broker may hold an empty fetch")
    # Kafka Streams' max.task.idle.ms defaults to 0; a little patience keeps the event-time
    # order when a producer writes one topic a moment after another (one 5 ms linger).
    kafka_max_idle_ms: int = Field(5, ge=0, description="how long a caught-up partition with nothing "
                                   "fetched may hold back the same partition of the other topics "
                                   "(counted from each held message's fetch)")
    kafka_max_lag_wait_ms: int = Field(5_000, ge=0, description="the same, for a partition the broker "
                                       "holds unread records for")
    kafka_commit_interval_ms: int = Field(1_000, ge=0, description="how often stored offsets are committed "
                                          "(a crash or rebalance redelivers at most this much; the store skips "
                                          "what it holds)")

    # The consumer in two processes: this one fetches, decodes, validates, dead-letters and
    # releases in event time; a child correlates and stores (triage/correlator_process.py).
    correlator_process: bool = Field(False, description="correlate and store in a child process, "
                                     "beside the one that fetches and decodes")

    # Store
    database_url: str = "sqlite:///triage.db"

    # Correlation: the sentence embedder of template texts. The model (the `ml` extra) by
    # default; without it a process refuses to start rather than decide differently,
    # unless the model-free hashing embedder is asked for by name (tests).
    embedder: Literal["minilm", "hashing"] = Field("minilm", description="minilm (all-MiniLM-L6-v2, the "
                                                   "`ml` extra) or hashing (no model; other decisions)")

    # Correlation: declared service dependencies, next to those learned from traces
    topology_file: FilePath | None = Field(None, description="a topology.json export or a services.yaml "
                                       "catalog (depends_on) of declared service dependencies")

    # The service catalog: applied to the store at start-up (a malformed file stops the
    # process, naming the line and field); served and edited under /services and /teams
    catalog_file: FilePath | None = Field(None, description="a services.yaml catalog: services with team, "
                                          "owners, depends_on, runbooks; teams with members and channels")
    catalog_mapping: str = Field("", description="comma-separated rules mapping an event onto a catalog entry, "
                                 "first match wins: service, label:<name>, placement, platform; empty = "
                                 "service,label:service,label:app,label:job,label:k8s.deployment.name,"
                                 "label:app.kubernetes.io/name,placement,platform")

    # Correlation domains: the unit of scale-out (docs/architecture.md)
    domain_from_labels: str = Field("", description="comma-separated label names: an event without a "
                                    "triage.domain label is correlated in the domain named by the first of "
                                    "these it carries (e.g. cluster); set it before the first start, the "
                                    "same for every process")

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = Field(None, description="base URL the API is reached at, for links")

    # Bounds on what comes in, the same on every intake (webhooks and Kafka; ``Limits``):
    # past one, a webhook answers 413 (size) or 422 naming the field, and Kafka
    # dead-letters the message with the limit named.
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="larger request bodies get 413, larger Kafka "
                                "messages are dead-lettered")
    max_labels: int = Field(256, ge=1, description="labels per event")
    max_label_key_length: int = Field(256, ge=1, description="characters in a label name")
    max_label_value_length: int = Field(65_536, ge=1, description="characters in a label value")
    max_title_length: int = Field(10_000, ge=1, description="characters in an event's title")
    max_event_body_length: int = Field(262_144, ge=1, description="characters in an event's body")
    pagerduty_webhook_secrets: SecretStr | None = Field(
        None, description="comma-separated signing secrets of PagerDuty v3 webhook subscriptions")

    # Pages out (the outbox sender): any of PagerDuty, a signed webhook, a Kafka topic
    pagerduty_routing_key: SecretStr | None = Field(None, description="Events API v2 integration key")
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    page_webhook_url: str | None = None
    page_webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for X-Triage-Signature")
    topic_incidents: str | None = Field("triage.incidents", description="Kafka topic for pages; empty = off")

    # Periodic jobs of the consumer processes (``triage serve`` / ``triage consume``)
    families_interval_s: float = Field(300.0, ge=0, description="refit alert families this often; 0 = off")
    auto_pause_tick_s: float = Field(1.0, ge=0, description="how often held first pages (auto-pause) are "
                                     "checked; 0 = off")

    # Metrics for processes without the API (``triage consume``): 0 = off
    metrics_port: int = Field(0, ge=0, le=65535)

    # Self-instrumentation
    otel_exporter: Literal["none", "otlp", "console"] = "none"
    otel_endpoint: str | None = Field(None, description="OTLP/HTTP traces endpoint")
    service_name: str = "triage"

    log_level: str = "INFO"

    @field_validator("catalog_mapping")
    @classmethod
    def _known_rules(cls, value: str) -> str:
        parse_rules(value)   # a rule it does not know is refused at start-up, named
        return value

    @property
    def mapping_rules(self) -> tuple[MappingRule, ...]:
        return parse_rules(self.catalog_mapping)

    @property
    def limits(self) -> Limits:
        return Limits(max_message_bytes=self.max_body_bytes, max_labels=self.max_labels,
                      max_label_key_length=self.max_label_key_length,
                      max_label_value_length=self.max_label_value_length,
                      max_title_length=self.max_title_length, max_body_length=self.max_event_body_length)

    @property
    def topics(self) -> list[str]:
        return self.topic_map.names()

    @property
    def topic_map(self) -> Topics:
        return Topics(alerts=self.topic_alerts, logs=self.topic_logs, traces=self.topic_traces)

    @property
    def page_targets(self) -> list[str]:
        targets = []
        if self.pagerduty_routing_key:
            targets.append("pagerduty")
        if self.page_webhook_url:
            targets.append("webhook")
        if self.topic_incidents:
            targets.append("kafka")
        return targets

    @property
    def pagerduty_secrets(self) -> list[str]:
        raw = self.pagerduty_webhook_secrets.get_secret_value() if self.pagerduty_webhook_secrets else ""
        return [part.strip() for part in raw.split(",") if part.strip()]

    @property
    def domain_labels(self) -> list[str]:
        return [part.strip() for part in self.domain_from_labels.split(",") if part.strip()]

    @property
    def api_url(self) -> str:
        return self.public_url or f"http://{self.api_host}:{self.api_port}"
