"""The HTTP API: incidents with their evidence, noise statistics, health and metrics.

``create_app`` takes everything it serves (store, readiness checks, metrics
registry) as arguments; it reads no settings and starts nothing itself.
"""

from triage.api.app import create_app

__all__ = ["create_app"]
