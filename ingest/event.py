"""The one event model every input is normalized into: alert, log record or span."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from triage.ingest.errors import InvalidEvent

LabelValue = str | int | float | bool

# A label producers may set to split one deployment into independent correlation
# domains (separate clusters, separate products): events of different domains are
# never grouped together, and each domain is one Kafka key and one store lock.
DOMAIN_LABEL = "triage.domain"
DOMAIN_MAX_LENGTH = 100


def without_nul(text: str) -> str:
    """``text`` with NUL characters shown as U+FFFD: PostgreSQL's text cannot hold one."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


class EventKind(str, Enum):
    alert = "alert"
    log = "log"
    span = "span"


class Status(str, Enum):
    firing = "firing"
    resolved = "resolved"


class Severity(str, Enum):
    """One scale for every source, ordered from most to least urgent."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.critical: 4, Severity.error: 3, Severity.warning: 2, Severity.info: 1, Severity.debug: 0}

# Words the tools we ingest actually use (Prometheus rule labels, PagerDuty,
# Grafana, Datadog, syslog, OpenTelemetry severity_text, P1-P5 / SEV1-5).
_SEVERITY_WORDS: dict[str, Severity] = {
    **dict.fromkeys(
        ["critical", "crit", "fatal", "emergency", "emerg", "alert", "panic", "page",
         "p1", "sev1", "sev-1", "disaster"], Severity.critical),
    **dict.fromkeys(["error", "err", "high", "major", "p2", "sev2", "sev-2"], Severity.error),
    **dict.fromkeys(
        ["warning", "warn", "medium", "average", "minor", "p3", "sev3", "sev-3"], Severity.warning),
    **dict.fromkeys(
        ["info", "information", "informational", "notice", "low", "ok", "none", "p4", "p5",
         "sev4", "sev5", "sev-4", "sev-5"], Severity.info),
    **dict.fromkeys(["debug", "trace", "verbose"], Severity.debug),
}


def normalize_severity(raw: str | int | None) -> Severity:
    """Map a source's severity word (or OTel severity number) onto the one scale.

    Unknown words are an error: silently calling them "info" hides real pages.
    """
    if raw is None:
        raise ValueError("severity is missing")
    if isinstance(raw, int) and not isinstance(raw, bool):
        # OpenTelemetry SeverityNumber: 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL
        if not 1 <= raw <= 24:
            raise ValueError(f"severity number {raw} is outside OpenTelemetry's 1..24")
        return [Severity.debug, Severity.debug, Severity.info, Severity.warning,
                Severity.error, Severity.critical][(raw - 1) // 4]
    word = str(raw).strip().lower()
    try:
        return _SEVERITY_WORDS[word]
    except KeyError:
        known = ", ".join(s.value for s in Severity)
        raise ValueError(f"unknown severity {raw!r}; use one of {known} (or a known synonym)") from None


# Optional names and ids a source sends as "" when it has none.
_BLANK_IS_NONE = ("service", "host", "fingerprint", "trace_id", "span_id", "parent_service")
# The labels that always name an event's service or host, in the order tried, for a
# source that does not fill the field itself (each with the field's bound): ``service``;
# Prometheus' ``node``, then ``host`` and ``hostname``. The webhooks also try labels that
# only sometimes name one, such as ``job`` and ``instance``.
SERVICE_LABELS = ("service",)
HOST_LABELS = ("node", "host", "hostname")
_FROM_LABELS = (("service", SERVICE_LABELS, 200), ("host", HOST_LABELS, 253))


class Event(BaseModel):
    """A monitoring signal, whatever tool sent it.

    ``fingerprint`` is the source's own dedup key (Alertmanager fingerprint,
    PagerDuty dedup_key, Datadog aggregation key), passed through unchanged;
    ``dedup_key`` is what triage deduplicates on: that fingerprint when there is
    one, else a hash of what makes two signals the same.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", use_enum_values=False)

    id: str = Field(min_length=1, max_length=200)
    kind: EventKind
    source: str = Field(min_length=1, max_length=100)
    occurred_at: AwareDatetime
    # The bounds are the store's columns: past them PostgreSQL would refuse the batch on
    # every retry, so they are refused here, where a webhook answers 422 and Kafka
    # dead-letters the message.
    service: str | None = Field(None, max_length=200)
    host: str | None = Field(None, max_length=253)   # a DNS name's longest
    severity: Severity
    severity_raw: str | None = None
    status: Status = Status.firing
    title: str = Field(min_length=1, max_length=10_000)
    body: str = ""
    labels: dict[str, LabelValue] = Field(default_factory=dict)
    fingerprint: str | None = Field(None, max_length=300)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_service: str | None = Field(None, max_length=200)
    raw: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _tidy(cls, data: Any) -> Any:
        # The rewrites that cannot fail, in one pass over the input: a validator per
        # field costs a call from pydantic's core each, which a consumer decoding every
        # message feels (they were half of an event's validation time).
        if not isinstance(data, dict):
            return data
        changes: dict[str, Any] = {}
        raw = data.get("severity")
        if raw is not None and not data.get("severity_raw"):
            changes["severity_raw"] = raw.value if isinstance(raw, Severity) else str(raw)
        for name in _BLANK_IS_NONE:
            if data.get(name) in ("", b""):   # what the str fields would accept as ""
                changes[name] = None
        labels = None if data.get("service") and data.get("host") else data.get("labels")
        if labels and isinstance(labels, dict):
            for name, keys, bound in _FROM_LABELS:
                if not data.get(name):
                    value = next((v for k in keys if isinstance(v := labels.get(k), str) and 0 < len(v) <= bound),
                                 None)
                    if value is not None:
                        changes[name] = value
        for name in ("title", "body"):
            # A log line may carry NUL bytes (binary garbage, C strings). Shown as
            # U+FFFD, the event is stored and keeps its place in an incident.
            text = data.get(name)
            if isinstance(text, str) and "\x00" in text:
                changes[name] = without_nul(text)
            elif isinstance(text, (bytes, bytearray)) and b"\x00" in text:   # lax str takes bytes
                changes[name] = bytes(text).replace(b"\x00", "\ufffd".encode())
        return {**data, **changes} if changes else data

    @field_validator("labels")
    @classmethod
    def _domain_fits(cls, v: dict[str, LabelValue]) -> dict[str, LabelValue]:
        if len(str(v.get(DOMAIN_LABEL, ""))) > DOMAIN_MAX_LENGTH:
            raise ValueError(f"label {DOMAIN_LABEL} is longer than {DOMAIN_MAX_LENGTH} characters")
        return v

    @field_validator("severity", mode="before")
    @classmethod
    def _normalize_severity(cls, v: Any) -> Severity:
        return v if isinstance(v, Severity) else normalize_severity(v)

    @field_validator("occurred_at", "starts_at", "ends_at")
    @classmethod
    def _to_utc(cls, v: datetime | None) -> datetime | None:
        return v.astimezone(timezone.utc) if v is not None else None


def domain_of(labels: Any) -> str | None:
    """The correlation domain a label set names, if any (works on raw JSON labels too)."""
    domain = labels.get(DOMAIN_LABEL) if isinstance(labels, dict) else None
    return str(domain) if domain not in (None, "") else None


def domain_named(labels: Any, fallbacks: Sequence[str] = ()) -> str | None:
    """The correlation domain a label set names (raw JSON labels too): its own
    ``triage.domain``, else the value of the first of the ``fallbacks`` labels it carries
    (``TRIAGE_DOMAIN_FROM_LABELS``, e.g. Prometheus's ``cluster`` external label: a
    classic Prometheus label name cannot hold the dot of ``triage.domain``, so Alertmanager can
    never send that one)."""
    return domain_of(labels) or _fallback_domain(labels, fallbacks)


def _fallback_domain(labels: Any, fallbacks: Sequence[str]) -> str | None:
    if not isinstance(labels, dict):
        return None
    return next((str(v) for name in fallbacks if (v := labels.get(name)) not in (None, "")), None)


def with_domain(event: Event, fallbacks: Sequence[str]) -> Event:
    """``event`` with the domain ``domain_named`` finds written into its ``triage.domain``
    label. Applied where events enter (the webhook sink, the Kafka decoder), so the Kafka
    key, the stored document and every consumer agree on the scope."""
    if not fallbacks or domain_of(event.labels) is not None:
        return event
    domain = _fallback_domain(event.labels, fallbacks)
    if domain is None:
        return event
    if len(domain) > DOMAIN_MAX_LENGTH:
        raise InvalidEvent(f"the label naming this event's correlation domain (TRIAGE_DOMAIN_FROM_LABELS) is "
                           f"longer than {DOMAIN_MAX_LENGTH} characters", "labels")
    return event.model_copy(update={"labels": {**event.labels, DOMAIN_LABEL: domain}})
