"""What a batch tells about changes: the change records among its events (taken out
before correlation: a change never pages and never joins an incident), and the services
whose OpenTelemetry ``service.version`` is new (a deploy). Both are written in the
batch's transaction, idempotent by change id, like the events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from triage.domain.change import Change, change_from_event
from triage.domain.event import Event
from triage.store.changes import VersionTracker, record_changes

VERSION_LABEL = "service.version"   # OpenTelemetry's resource attribute, a label of the event


@dataclass
class BatchChanges:
    events: list[Event]                                   # the batch's other events, to correlate
    changes: list[Change] = field(default_factory=list)
    # (service, version) -> the earliest event time it was seen with, in the batch
    versions: dict[tuple[str, str], datetime] = field(default_factory=dict)
    announced: set[tuple[str, str]] = field(default_factory=set)   # versions the changes name
    written: bool = False

    def __bool__(self) -> bool:
        return bool(self.changes or self.versions)


class ChangeRecorder:
    def __init__(self) -> None:
        self.versions = VersionTracker()

    def take(self, events: Sequence[Event]) -> BatchChanges:
        rest: list[Event] = []
        found = BatchChanges(rest)
        for event in events:
            change = change_from_event(event)
            if change is not None:
                found.changes.append(change)
                if change.service and change.version:
                    found.announced.add((change.service, change.version))
                continue
            rest.append(event)
            version = event.labels.get(VERSION_LABEL) if event.service else None
            if isinstance(version, str) and version:
                pair = (event.service or "", version)
                first = found.versions.get(pair)
                if first is None or event.occurred_at < first:
                    found.versions[pair] = event.occurred_at
        return found

    def to_write(self, batch: BatchChanges) -> bool:
        """Whether ``batch`` has anything to write: changes, or a version not known yet."""
        return bool(batch.changes) or any(not self.versions.knows(pair) for pair in batch.versions)

    def write(self, conn: sa.Connection, batch: BatchChanges, received_at: datetime) -> None:
        """Inside the batch's transaction: the changes and the versions' news."""
        if not batch:
            return
        changes = list(batch.changes)
        # A version a change record names is known from it: the services' own reports of
        # it make no second change of the same deploy.
        seen = dict(batch.versions)
        for c in batch.changes:
            if c.service and c.version:
                pair = (c.service, c.version)
                seen[pair] = min(seen.get(pair, c.occurred_at), c.occurred_at)
        changes += self.versions.observe(conn, seen, announced=batch.announced)
        record_changes(conn, changes, received_at)
        batch.written = True

    def committed(self, batch: BatchChanges) -> None:
        self.versions.committed([*batch.versions, *batch.announced])
