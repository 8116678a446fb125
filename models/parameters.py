"""Correlation parameters: what SREs tune. Validated, immutable, versioned by the store."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CorrelationParameters(BaseModel):
    """Windows and timers, in seconds, with Alertmanager's names where they mean the same.

    * ``group_wait``: how long a new incident collects alerts before its first page.
    * ``group_interval``: the least time between two update pages of one incident.
    * ``repeat_interval``: re-page an incident whose alerts keep firing unchanged.
    * ``window``: an event joins its scope's open incident when that incident saw an
      event within this long; otherwise it opens a new one.
    * ``max_incident_age``: an incident stops accepting events this long after it
      opened, so that a chronic problem cannot grow one incident forever.
    * ``dedup_window``: a log line or span identical to one seen this recently is a
      duplicate. Alerts are duplicates while their fingerprint is firing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    group_wait: float = Field(30.0, ge=0)
    group_interval: float = Field(300.0, ge=0)
    repeat_interval: float = Field(4 * 3600.0, ge=0)
    window: float = Field(300.0, gt=0)
    max_incident_age: float = Field(6 * 3600.0, gt=0)
    dedup_window: float = Field(3600.0, ge=0)

    @model_validator(mode="after")
    def _age_covers_window(self) -> "CorrelationParameters":
        if self.max_incident_age < self.window:
            raise ValueError("max_incident_age must be at least window")
        return self
