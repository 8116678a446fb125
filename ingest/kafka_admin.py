"""The broker's side of things the processes need besides consuming: the topics triage
reads and writes, created when missing, and the readiness probe."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError


def ensure_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int) -> None:
    """Create the topics triage reads and writes if they are missing."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="triage-admin")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in dict.fromkeys(topics) if t not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another replica created it first
    finally:
        admin.close()


class BrokerProbe:
    """Readiness: does the broker answer a metadata request? Reuses one admin client."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            try:
                if self._admin is None:
                    # 3 s to find the broker down, not kafka-python's 30: /readyz must answer.
                    self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers,
                                                   client_id="triage-probe", request_timeout_ms=3000,
                                                   bootstrap_timeout_ms=3000)
                self._admin.list_topics()
            except Exception:
                if self._admin is not None:
                    self._admin.close()
                    self._admin = None
                raise

    def close(self) -> None:
        with self._lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
