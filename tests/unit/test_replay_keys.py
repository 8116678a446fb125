"""`triage replay` keys each line by its correlation scope, as the consumer will see it."""
from __future__ import annotations

import json

from triage.replay import route
from triage.settings import Settings


def line(**labels: str) -> bytes:
    return json.dumps({"kind": "log", "title": "t", "labels": labels}).encode()


def test_a_line_is_keyed_by_its_domain_or_by_the_label_the_settings_name() -> None:
    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    by_cluster = Settings(_env_file=None, domain_from_labels="cluster")  # type: ignore[call-arg]
    assert route(line(cluster="eu"), plain) == (plain.topic_logs, b"global")
    assert route(line(cluster="eu"), by_cluster) == (plain.topic_logs, b"domain:eu")
    assert route(line(**{"triage.domain": "shop", "cluster": "eu"}), by_cluster)[1] == b"domain:shop"
    assert route(b"not json", by_cluster) == (plain.topic_alerts, b"global")
