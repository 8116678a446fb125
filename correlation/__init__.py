"""Correlation: events in, decisions out (suppressed / attached / opened, and why).

Pure logic over plain dataclasses. Time is always passed in; nothing here reads
the clock, talks to Kafka, or knows the store's tables: the caller loads a
``CorrelationState`` for the scopes of a batch, runs the ``Correlator`` and
saves what changed.
"""

from triage.correlation.correlator import Correlator
from triage.correlation.decision import Action, Decision, Rule
from triage.correlation.identity import dedup_key
from triage.domain.scope import scope_of
from triage.correlation.state import CorrelationState, IncidentState, SignalState

__all__ = [
    "Action", "CorrelationState", "Correlator", "Decision", "IncidentState", "Rule", "SignalState",
    "dedup_key", "scope_of",
]
