"""What a pipeline keeps of its scopes from one batch to the next, and when it may use it.

Reading a scope's incidents again (their profiles are large) was a fifth of a small
batch's time, and rebuilding the correlator's indexes a tenth of a one-event batch's
(docs/benchmarks.md, "Why the hot path is built as it is"); the next batch of a scope
usually needs exactly what the last one left. So after each commit the pipeline keeps,
per scope, the incidents still accepting events, the learned models, and the revision
its own batch gave the scope; and the correlator that decided the batch, with its
indexes. ``ScopeCache`` is the one place that holds them.

**The validity rule.** Every transaction that writes a scope takes its lock and bumps its
revision (a batch, a merge or split, the held-pages ticker, another consumer after a
rebalance: ``SqlStore.lock_scopes``). A scope kept at revision r is current when this
batch's bump gives it r + 1: the bump is our own, nobody wrote the scope in between.
Then its models are used as kept, and its incidents too if they cover the batch (kept
from a batch whose earliest event was no later than this one's); else the incidents are
read again, and the models are used only if the store's row still has their version. The
correlator is kept when every scope the batch decides is used as kept, incidents and
models, and the parameters and families are the same objects.

A batch takes what it uses out of the cache (``take``) and only its commit puts anything
back (``keep``): after a failed batch nothing it touched is reused.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime

from triage.correlation import CorrelationState, Correlator, IncidentState
from triage.correlation.state import ScopeModels
from triage.store.batch import Kept


@dataclass
class _Scope:
    """A scope as this process's last batch of it committed it."""

    revision: int                  # the revision that batch's bump gave the scope
    since: datetime                # that batch's earliest event
    incidents: list[IncidentState]  # every incident of the scope accepting events at or after ``since``
    models: ScopeModels


@dataclass
class Taken:
    """What ``ScopeCache.take`` hands a batch."""

    kept: Kept                       # for ``UnitOfWork.load_state``
    correlator: Correlator | None    # the last correlator, if every scope the batch decides is current


class ScopeCache:
    """The scopes and the correlator a pipeline keeps between batches (see the module's
    docstring for the rule). One batch at a time: a pipeline is called by one consumer."""

    def __init__(self) -> None:
        self._scopes: dict[str, _Scope] = {}
        self._correlator: Correlator | None = None

    @property
    def correlator(self) -> Correlator | None:
        """The correlator of the last batch that committed, if nothing has taken it since."""
        return self._correlator

    def take(self, revisions: Mapping[str, int], earliest: datetime, deciding: Set[str]) -> Taken:
        """Take out what the batch may use: ``revisions`` are its scopes' revisions after its
        own bump, ``earliest`` its earliest new event, ``deciding`` the scopes of its new
        events."""
        kept = Kept()
        current: set[str] = set()   # scopes whose incidents and models are both used as kept
        for scope in sorted(revisions):
            entry = self._scopes.pop(scope, None)
            if entry is None:
                continue
            if entry.revision != revisions[scope] - 1:   # someone else wrote the scope
                kept.models_if_unchanged[scope] = entry.models
                continue
            kept.models[scope] = entry.models
            if entry.since <= earliest:
                kept.incidents[scope] = sorted((i for i in entry.incidents if _accepting_since(i, earliest)),
                                               key=lambda i: i.id)   # the store's order
                current.add(scope)
        correlator, self._correlator = self._correlator, None
        return Taken(kept, correlator if correlator is not None and deciding <= current else None)

    def keep(self, revisions: Mapping[str, int], earliest: datetime, state: CorrelationState,
             correlator: Correlator) -> None:
        """After the batch's commit: its scopes as it left them, and its correlator."""
        scopes: dict[str, _Scope] = {}
        for scope, revision in revisions.items():
            models = state.models.get(scope)
            if models is not None:
                scopes[scope] = _Scope(revision, earliest, [], models)
        for incident in state.incidents.values():
            entry = scopes.get(incident.scope)
            if entry is not None and _accepting_since(incident, earliest):
                entry.incidents.append(incident)
        self._scopes.update(scopes)
        self._correlator = correlator


def _accepting_since(incident: IncidentState, since: datetime) -> bool:
    return incident.accepting_until is not None and incident.accepting_until >= since
