"""The store: events, incidents, memberships with their evidence. SQLite or PostgreSQL."""

from triage.store.records import (
    BatchResult, IncidentQuery, IncidentRecord, Membership, IncidentConflict, NoiseBucket, NoiseStats, Page,
    StoredEvent,
)
from triage.store.reads import StoreReads
from triage.store.sql import SqlStore

__all__ = [
    "BatchResult", "IncidentQuery", "IncidentRecord", "Membership", "IncidentConflict", "NoiseBucket", "NoiseStats",
    "Page", "SqlStore", "StoreReads", "StoredEvent",
]
