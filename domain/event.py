"""The one event model every input is normalized into: alert, log record or span."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Final

from pydantic import (
    AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from triage.domain.errors import InvalidEvent

LabelValue = str | int | float | bool

# A label producers may set to split one deployment into independent correlation
# domains (separate clusters, separate products): events of different domains are
# never grouped together, and each domain is one Kafka key and one store lock.
DOMAIN_LABEL = "triage.domain"
DOMAIN_MAX_LENGTH = 100


# The times an event may carry. The correlation windows are added to and subtracted from
# event times (an incident's ``opened_at + max_incident_age``, at most ten years: see
# ``triage.models.parameters``); a date near the ends of what ``datetime`` holds (year 1 or
# 9999) overflowed there, inside a batch's transaction, on every retry. Nothing monitoring
# sends is older than the Unix epoch or centuries ahead.
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST: Final = datetime(2200, 1, 1, tzinfo=timezone.utc)   # excluded


@dataclass(frozen=True)
class Limits:
    """Bounds on what an intake accepts, the same for every intake (``TRIAGE_MAX_*``):
    past one, the event (or message, or request body) is refused with the limit named.
    Lengths are in characters, sizes in bytes. The defaults hold every data set triage
    ships with or is evaluated on by orders of magnitude (the longest body there is 452
    characters, the most labels 10), and still refuse a 5 MB message, 10,000 labels or a
    500 KB label value.

    Passed as pydantic's validation context (``Event.model_validate(data,
    context=limits)``); without one the defaults apply."""

    max_message_bytes: int = 1024 * 1024   # a Kafka message value; a webhook request body
    max_labels: int = 256
    max_label_key_length: int = 256
    max_label_value_length: int = 65_536   # OpenTelemetry's exception.stacktrace is a label
    max_title_length: int = 10_000
    max_body_length: int = 262_144


DEFAULT_LIMITS: Final = Limits()


class _AsStored:
    """Validation context of an event read back from the store: it was checked against
    the bounds of its time when it came in, and reading it must not depend on today's."""


AS_STORED: Final = _AsStored()


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
    title: str = Field(min_length=1)   # bounded by ``Limits``
    body: str = ""
    labels: dict[str, LabelValue] = Field(default_factory=dict)
    fingerprint: str | None = Field(None, max_length=300)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    trace_id: str | None = Field(None, max_length=256)
    span_id: str | None = Field(None, max_length=256)
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

    @model_validator(mode="after")
    def _bounded(self, info: ValidationInfo) -> Event:
        """The bounds of ``Limits`` and the values the store and the engine cannot hold,
        in one pass (a validator per field costs a call from pydantic's core each)."""
        if info.context is AS_STORED:
            return self
        problem = _out_of_bounds(self, info.context if isinstance(info.context, Limits) else DEFAULT_LIMITS)
        if problem is not None:
            field, message = problem
            raise ValidationError.from_exception_data("Event", [InitErrorDetails(
                type=PydanticCustomError("out_of_bounds", message), loc=(field,), input=getattr(self, field))])
        return self

    @field_validator("severity", mode="before")
    @classmethod
    def _normalize_severity(cls, v: Any) -> Severity:
        return v if isinstance(v, Severity) else normalize_severity(v)

    @field_validator("occurred_at", "starts_at", "ends_at")
    @classmethod
    def _to_utc(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return None
        try:
            return v.astimezone(timezone.utc)
        except OverflowError:   # year 1 or 9999 with an offset that takes it past the end
            raise ValueError("is outside the dates a computer calendar holds") from None


def storable_text(value: str) -> str:
    """Text PostgreSQL can hold and SQLite can bind: no NUL, valid UTF-8 (JSON's ``\\ud800``
    escapes decode to lone surrogates, which no UTF-8 encoder takes)."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it holds a lone surrogate)") from None
    return value


# Fields that name things (an event, a service, an alert's identity): a NUL character in
# one, which PostgreSQL's text cannot hold (it refused the whole batch for it), is refused
# rather than altered; a title's or body's is shown as U+FFFD (``_tidy``).
_TIMES = ("occurred_at", "starts_at", "ends_at")
_NAMES = ("id", "source", "service", "host", "fingerprint", "trace_id", "span_id", "parent_service",
          "severity_raw")


def _out_of_bounds(e: Event, limits: Limits) -> tuple[str, str] | None:
    """(field, why) of the first value of ``e`` past ``limits`` or that cannot be stored.
    Written for speed (a consumer validates every event): plain loops over the fields
    as stored, no generator."""
    d = e.__dict__
    for name in _TIMES:
        value = d[name]
        if value is not None and not EARLIEST <= value < LATEST:
            return name, (f"{value.isoformat()} is outside the times triage accepts "
                          f"({EARLIEST.year} to {LATEST.year - 1})")
    for name in _NAMES:
        value = d[name]
        if value is not None and "\x00" in value:
            return name, "contains a NUL character, which the store cannot hold"
    if len(d["title"]) > limits.max_title_length:
        return "title", (f"{len(e.title)} characters long, more than the limit of {limits.max_title_length} "
                         "(TRIAGE_MAX_TITLE_LENGTH)")
    if len(d["body"]) > limits.max_body_length:
        return "body", (f"{len(e.body)} characters long, more than the limit of {limits.max_body_length} "
                        "(TRIAGE_MAX_EVENT_BODY_LENGTH)")
    labels: dict[str, LabelValue] = d["labels"]
    if len(labels) > limits.max_labels:
        return "labels", f"{len(labels)} labels, more than the limit of {limits.max_labels} (TRIAGE_MAX_LABELS)"
    key_bound, value_bound = limits.max_label_key_length, limits.max_label_value_length
    for key, value in labels.items():
        if len(key) > key_bound:
            return "labels", (f"a label name is {len(key)} characters long, more than the limit of "
                              f"{key_bound} (TRIAGE_MAX_LABEL_KEY_LENGTH): {key[:40]!r}…")
        if "\x00" in key:
            return "labels", f"label name {key[:40]!r} contains a NUL character, which the store cannot hold"
        if isinstance(value, str):
            if len(value) > value_bound:
                return "labels", (f"label {key[:40]!r} is {len(value)} characters long, "
                                  f"more than the limit of {value_bound} (TRIAGE_MAX_LABEL_VALUE_LENGTH)")
            if "\x00" in value:
                return "labels", f"label {key[:40]!r} contains a NUL character, which the store cannot hold"
        elif isinstance(value, float) and not math.isfinite(value):
            return "labels", f"label {key[:40]!r} is {value}: only finite numbers can be stored"
    if d["raw"] is not None:
        where = _non_finite(d["raw"])
        if where is not None:
            return "raw", f"{where} is not a finite number, which JSON and the store cannot hold"
    return None


def _non_finite(value: Any, where: str = "raw", depth: int = 0) -> str | None:
    """Where in a JSON-like value a NaN or an infinity is, if anywhere."""
    if type(value) is float:
        return None if math.isfinite(value) else where
    if depth > 64:
        return None   # deeper than any JSON parser here nests; nothing to find there
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}", depth + 1)
        if found is not None:
            return found
    return None


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


@dataclass(frozen=True)
class ServiceEdge:
    """``caller`` called ``callee``, seen in a trace at ``observed_at``."""

    caller: str
    callee: str
    observed_at: datetime
