"""The learned and tunable parts of triage: parameters (versioned), the template embedder,
the incident-centroid index and the service graph. Nothing here knows about Kafka, the
store or the API; they call in through plain methods."""

from triage.models.parameters import CorrelationParameters

__all__ = ["CorrelationParameters"]
