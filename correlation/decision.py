"""What the correlator decided for one event, and the evidence for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Action(str, Enum):
    suppressed = "suppressed"  # a duplicate: recorded on its incident, pages nobody
    attached = "attached"      # joined an existing incident
    opened = "opened"          # started a new incident


@dataclass(frozen=True)
class Decision:
    event_id: str
    action: Action
    incident_id: str
    rule: str                              # the rule that decided, e.g. "same_scope_within_window"
    evidence: dict[str, Any] = field(default_factory=dict)  # the values that matched
    parameters_version: int = 0
    notify: bool = False                   # this event makes a page (or page update) due

    @property
    def opens_incident(self) -> bool:
        """A firing alert opened an incident, or joined a noise group and made it one."""
        return self.rule == "new_incident" or bool(self.evidence.get("promoted"))

    @property
    def opens_noise_group(self) -> bool:
        """A log, a span or a resolve that fit no group opened one that pages nobody."""
        return self.rule == "noise_group"
