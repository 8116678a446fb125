"""The database cut for 10 s under `triage serve`, with events flowing and pages going out:
the process stays up, says so in /readyz (503 during the cut, 200 after), stores every
event exactly once, and logs the outage as state changes, not a traceback per second."""

from __future__ import annotations

import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from tests.integration.kafka_helpers import event_json, isolated_settings, start_triage, wait_for
from tests.integration.tcp_proxy import TcpProxy
from triage.broker import EmbeddedBroker, free_port
from triage.ingest.kafka_admin import ensure_topics
from triage.models.parameters import CorrelationParameters
from triage.store import SqlStore
from triage.paging.outbox import OutboxStore
from triage.store.parameters import ParameterStore

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

CUT_S = 10.0


class PageReceiver(ThreadingHTTPServer):
    """The page webhook's receiver: 204 to every delivery, each delivery id recorded."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.deliveries: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Hook(BaseHTTPRequestHandler):
    server: PageReceiver

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers["content-length"]))
        with self.server.lock:
            self.server.deliveries[self.headers["X-Triage-Delivery"]] += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[PageReceiver]:
    server = PageReceiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


class Stream:
    """Alerts produced into Kafka at a steady pace from a thread until ``stop()``: new ids,
    a few services, firing and resolved, so incidents open and their pages fall due."""

    def __init__(self, bootstrap: str, topic: str, per_second: float = 20.0) -> None:
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        self.topic = topic
        self.pause = 1.0 / per_second
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.pause):
            event_id = f"cut-{n}-{uuid.uuid4().hex[:6]}"
            service = f"svc-{n % 4}"
            value = event_json(id=event_id, service=service, fingerprint=f"{service}-{n % 7}",
                               status="resolved" if n % 5 == 4 else "firing",
                               occurred_at=datetime.now(timezone.utc).isoformat(),
                               labels={"alertname": "HighErrorRate", "service": service})
            self.producer.send(self.topic, key=service.encode(), value=value)
            self.ids.append(event_id)
            n += 1

    def stop(self) -> set[str]:
        self._stop.set()
        self._thread.join(10)
        self.producer.flush()
        self.producer.close()
        return set(self.ids)


def readyz(port: int) -> tuple[int, dict[str, str]]:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    except httpx.HTTPError as exc:
        return 0, {"http": str(exc)}
    return response.status_code, response.json().get("checks", {})


def tracebacks_by_logger(log: str) -> Counter[str]:
    """Which logger's record each traceback in the log belongs to."""
    record = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ([\w.]+): ")
    owner, counts = "?", Counter[str]()
    for line in log.splitlines():
        match = record.match(line)
        if match:
            owner = match.group(1)
        elif line.startswith("Traceback (most recent call last)"):
            counts[owner] += 1
    return counts


def test_serve_rides_out_a_database_cut_with_nothing_lost_or_doubled(
        broker: EmbeddedBroker, pg_url: str, receiver: PageReceiver, tmp_path: Path) -> None:
    pg = sa.make_url(pg_url)
    direct = SqlStore.from_url(pg_url)   # the test's own view, not through the proxy
    # Pages fall due 2 s after their incident opens (not 30, and not held by auto_pause): some during the cut.
    ParameterStore(direct.engine).put(CorrelationParameters(group_wait=2, auto_pause=0), author="test",
                                      reason="fault test")
    with TcpProxy(pg.host or "127.0.0.1", pg.port or 5432) as proxy:
        proxied = pg.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        api_port = free_port()
        settings = isolated_settings(broker.bootstrap_servers, proxied, page_webhook_url=receiver.url,
                                     topic_incidents="", families_interval_s=0, kafka_max_poll_records=50
                                     ).model_copy(update={"api_port": api_port})
        ensure_topics(settings.kafka_bootstrap_servers, [*settings.topics, settings.topic_dlq], 2)
        log_path = tmp_path / "serve.log"
        proc = start_triage(["serve"], settings, log_path)
        try:
            wait_for(lambda: proc.poll() is not None or readyz(api_port)[0] == 200, 180, "serve to be ready")
            assert proc.poll() is None, log_path.read_text()[-3000:]

            stream = Stream(settings.kafka_bootstrap_servers, settings.topic_alerts)
            wait_for(lambda: direct.count_events() >= 40, 60, "events stored before the cut")

            proxy.cut()
            cut_at = time.monotonic()
            during: list[tuple[int, dict[str, str]]] = []
            while time.monotonic() - cut_at < CUT_S:
                during.append(readyz(api_port))
                time.sleep(0.5)
            proxy.resume()
            resumed_at = time.monotonic()
            assert proc.poll() is None, "serve exited during the cut:\n" + log_path.read_text()[-3000:]
            assert proxy.refused > 0   # something tried to reach the database during the cut

            time.sleep(3)   # events keep coming after the database is back
            ids = stream.stop()

            wait_for(lambda: readyz(api_port)[0] == 200, 60, "/readyz 200 after the database is back")
            ready_after = time.monotonic() - resumed_at
            wait_for(lambda: direct.count_events() >= len(ids), 120, f"all {len(ids)} events stored")
            # Pages that fell due were delivered once the database was back.
            wait_for(lambda: not _overdue(direct), 60, "every page due by now to be sent")
            assert proc.poll() is None, log_path.read_text()[-3000:]

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log_path.read_text()[-3000:]
        finally:
            proc.kill()

    # /readyz: 503 through the cut, naming the sender among what is failing; 200 after.
    codes = [code for code, _ in during]
    assert codes and all(code == 503 for code in codes), codes
    assert any("sender" in checks and checks["sender"].startswith("failing") for _, checks in during), during
    assert ready_after < 45

    # Every event stored, each decided exactly once.
    with direct.engine.connect() as conn:
        decided = Counter(conn.scalars(sa.text("SELECT event_id FROM memberships")))
    assert direct.count_events() == len(ids) and set(decided) == ids
    assert max(decided.values()) == 1
    outbox = OutboxStore(direct.engine)
    assert "failed" not in outbox.counts()
    sent = {row["id"] for row in outbox.items() if row["status"] == "sent"}
    assert sent and sent <= set(receiver.deliveries)
    direct.close()

    # The log: the outage as state changes (failing, recovered), no traceback per second.
    log = log_path.read_text(errors="replace")
    assert "sender is failing, retrying with backoff: OperationalError" in log
    assert "sender recovered" in log
    assert "thread died" not in log and "stopping the process" not in log
    tracebacks = tracebacks_by_logger(log)
    assert not tracebacks, tracebacks


def _overdue(store: SqlStore) -> bool:
    """A page still owed whose time came more than 15 s ago."""
    now = datetime.now(timezone.utc).timestamp()
    return any(row["status"] == "pending" and row["next_attempt_at"].timestamp() < now - 15
               for row in OutboxStore(store.engine).items())
