"""Which input topic carries which kind of event: the one mapping the consumer, the
webhook sink, ``triage replay`` and ``triage bench`` share."""

from __future__ import annotations

from dataclasses import dataclass

from triage.domain.event import EventKind
from triage.ingest.otlp import TopicKind


@dataclass(frozen=True)
class Topics:
    alerts: str = "alerts"
    logs: str = "logs"      # also takes OTLP logs
    traces: str = "traces"  # also takes OTLP traces

    def for_kind(self, kind: EventKind | str | None) -> str:
        """The topic of an event of ``kind`` (anything unknown goes to the alerts topic,
        whose consumer dead-letters what it cannot decode, with the reason)."""
        value = kind.value if isinstance(kind, EventKind) else kind
        return {"log": self.logs, "span": self.traces}.get(str(value), self.alerts)

    def kinds(self) -> dict[str, TopicKind]:
        """Topic name -> what the consumer decodes on it."""
        return {self.alerts: "alerts", self.logs: "logs", self.traces: "traces"}

    def names(self) -> list[str]:
        return [self.alerts, self.logs, self.traces]
