"""The real Prometheus Alertmanager (Debian's prometheus-alertmanager 0.25) as a peer:
alerts posted to it arrive in triage through its webhook, with its fingerprints, grouped,
and resolve when it resolves them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from tests.conftest import skip_or_fail
from tests.integration.kafka_helpers import running, wait_for
from triage.broker import EmbeddedBroker, free_port, wait_for_port
from triage.service import Runtime
from triage.store import IncidentQuery

pytestmark = pytest.mark.integration


@pytest.fixture
def triage_rt(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Runtime]:
    with running(broker.bootstrap_servers, tmp_path / "am.db") as rt:
        yield rt


@pytest.fixture
def alertmanager(triage_rt: Runtime, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        skip_or_fail("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: triage
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: triage
    webhook_configs:
      - url: http://127.0.0.1:{triage_rt.api_port}/webhooks/alertmanager
        send_resolved: true
""")
    proc = subprocess.Popen(
        [str(binary), f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "am.log").open("wb"))
    try:
        wait_for_port("127.0.0.1", port, 20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _alerts(now: datetime, *, ends: datetime | None = None) -> list[dict[str, object]]:
    alerts = []
    for instance in ("10.0.0.1:8080", "10.0.0.2:8080"):
        alert: dict[str, object] = {
            "labels": {"alertname": "HighLatency", "service": "checkout", "severity": "critical",
                       "instance": instance},
            "annotations": {"summary": f"p99 latency above 2s on {instance}"},
            "startsAt": now.isoformat(),
        }
        if ends is not None:
            alert["endsAt"] = ends.isoformat()
        alerts.append(alert)
    return alerts


def test_alerts_from_alertmanager_arrive_grouped_and_resolve(alertmanager: str, triage_rt: Runtime) -> None:
    store = triage_rt.store
    now = datetime.now(timezone.utc) - timedelta(seconds=5)
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=_alerts(now)).status_code == 200
    wait_for(lambda: store.count_events() >= 2, 30, "Alertmanager's notification")

    fingerprints = {a["fingerprint"] for a in httpx.get(f"{alertmanager}/api/v2/alerts").json()}
    [incident] = store.list_incidents(IncidentQuery()).items
    stored = store.incident_events(incident.id)
    assert {s.event.fingerprint for s in stored} == fingerprints and len(fingerprints) == 2
    assert {s.event.source for s in stored} == {"alertmanager"}
    assert incident.status == "open" and incident.firing_alerts == 2

    resolved_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=_alerts(now, ends=resolved_at)).status_code == 200

    def incident_resolved() -> bool:
        record = store.get_incident(incident.id)
        return record is not None and record.status == "resolved"

    wait_for(incident_resolved, 30, "the incident to resolve when Alertmanager resolves its alerts")
    assert store.list_incidents(IncidentQuery()).total == 1
