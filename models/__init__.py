"""The learned and tunable parts of triage: parameters (versioned), and later the
embedder, indexes and recommenders. Nothing here knows about Kafka, the store or
the API; they call in through plain methods."""

from triage.models.parameters import CorrelationParameters

__all__ = ["CorrelationParameters"]
