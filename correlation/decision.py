"""What the correlator decided for one event, and the evidence for it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from triage.correlation.evidence import Evidence, Joined, Resolve, Rule

__all__ = ["Action", "Decision", "Rule"]


class Action(StrEnum):
    suppressed = "suppressed"  # a duplicate: recorded on its incident, pages nobody
    attached = "attached"      # joined an existing incident
    opened = "opened"          # started a new incident


@dataclass(frozen=True, slots=True)
class Decision:
    event_id: str
    action: Action
    incident_id: str
    rule: Rule                             # the rule that decided
    evidence: Evidence                     # the values that matched (its type follows the rule)
    parameters_version: int = 0
    notify: bool = False                   # this event makes a page (or page update) due

    @property
    def opens_incident(self) -> bool:
        """A firing alert opened an incident, or joined a noise group and made it one."""
        return self.rule is Rule.new_incident or (isinstance(self.evidence, Joined) and self.evidence.promoted)

    @property
    def opens_noise_group(self) -> bool:
        """A log, a span or a resolve that fit no group opened one that pages nobody."""
        return self.rule is Rule.noise_group

    @property
    def incident_resolved(self) -> bool:
        """A resolve for the last alert still firing resolved the incident: a page to resolve."""
        return isinstance(self.evidence, Resolve) and self.evidence.incident_resolved

    @property
    def template(self) -> str | None:
        """The event's template id (None for a decision that does not name one)."""
        return self.evidence.template
