"""The outbox sender: delivers owed pages to PagerDuty, a webhook and a Kafka topic.

Retries with exponential backoff on 5xx, 429, timeouts and connection errors; gives up on
other 4xx with the error recorded. A row is marked sent only after its target accepted
it, so a crash re-sends (at least once); PagerDuty's dedup_key and the webhook's
``X-Triage-Delivery`` id make a re-send recognisable.

Two kinds of failure, kept apart. A *target* that fails (PagerDuty, the webhook, the
Kafka topic) delays its rows, each on its own backoff, and shows as
``triage_page_target_up{target=...} 0``; it does not make the process unready, since the
outbox keeps every page owed until the target takes it. The *database* failing (or a bug)
fails the sender's turn: ``run`` reports the ``sender`` component failing, which
``/readyz`` shows, and tries again after a backoff. A row claimed in a failed turn is
retried when its lease runs out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import httpx
from kafka import KafkaProducer
from kafka.errors import KafkaError

from triage.domain.health import Backoff, Health, run_loop
from triage.paging.compose import incident_document, pagerduty_event
from triage.models.recommender import Suggestions
from triage.models.triage_context import TriageContext
from triage.store import SqlStore
from triage.paging.outbox import OutboxItem, OutboxStore

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Target(Protocol):
    name: str

    def send(self, item: OutboxItem, document: dict[str, Any]) -> None: ...


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        response = client.post(url, content=body, headers={"content-type": "application/json", **headers})
    except httpx.TransportError as exc:  # timeouts, refused connections: the receiver may come back
        raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:300]}", retryable=True)
    if response.status_code >= 400:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:300]}", retryable=False)


class PagerDutyTarget:
    name = "pagerduty"

    def __init__(self, url: str, routing_key: str, client: httpx.Client) -> None:
        self.url = url
        self._routing_key = routing_key
        self.client = client

    def send(self, item: OutboxItem, document: dict[str, Any]) -> None:
        body = json.dumps(pagerduty_event(item.action, document, self._routing_key)).encode()
        _post(self.client, self.url, body, {})


class WebhookTarget:
    """JSON, signed: ``X-Triage-Signature: v1=<hex HMAC-SHA256 of the body>``."""

    name = "webhook"

    def __init__(self, url: str, secret: str, client: httpx.Client) -> None:
        self.url = url
        self._secret = secret.encode()
        self.client = client

    def send(self, item: OutboxItem, document: dict[str, Any]) -> None:
        body = json.dumps({"action": item.action, "delivery_id": item.id, "incident": document}).encode()
        signature = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        _post(self.client, self.url, body, {"X-Triage-Signature": f"v1={signature}", "X-Triage-Delivery": item.id})


class KafkaTarget:
    """The producer is made at the first send, not at start-up: a broker that is down when
    the process starts is a delivery to retry, not a reason the process cannot start."""

    name = "kafka"

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers
        self._producer: KafkaProducer | None = None

    def send(self, item: OutboxItem, document: dict[str, Any]) -> None:
        body = json.dumps({"action": item.action, "delivery_id": item.id, "incident": document}).encode()
        try:
            if self._producer is None:
                # 5 s, not kafka-python's 30, to find the broker down: the other targets wait meanwhile.
                self._producer = KafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all",
                                               client_id="triage-pages", bootstrap_timeout_ms=5000)
            self._producer.send(self.topic, key=item.incident_id.encode(), value=body).get(timeout=10)
        except KafkaError as exc:
            raise DeliveryError(f"Kafka: {type(exc).__name__}: {exc}", retryable=True) from exc

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()


class DeliveryObserver(Protocol):
    """What the sender tells ``/metrics`` (``triage.services.telemetry.Metrics``) of each page it settles."""

    def page_sent(self, target: str, action: str) -> None: ...
    def page_dropped(self, target: str, reason: str) -> None: ...


class OutboxSender:
    """``health``: the process's components (``run`` reports ``sender`` there);
    ``target_health``: one state per page target (see the module's docstring);
    ``suggest``: what a page says of similar past incidents and who fixed them, by
    incident id (the services' ``SuggestionService.for_incident``; none without it);
    ``triage``: an incident's triage context (``TriageContextService.for_incident``);
    ``observer``: counts of pages sent and dropped."""

    def __init__(self, store: SqlStore, targets: Sequence[Target], api_url: str, *,
                 backoff: timedelta = timedelta(seconds=1), max_backoff: timedelta = timedelta(minutes=5),
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 health: Health | None = None, target_health: Health | None = None,
                 suggest: Callable[[str], Suggestions] | None = None,
                 triage: Callable[[str], TriageContext | None] | None = None,
                 observer: DeliveryObserver | None = None) -> None:
        self.store = store
        self.observer = observer
        self.health = health or Health()
        self.target_health = target_health or Health()
        for name in (t.name for t in targets):
            self.target_health.register(name)
        self.suggest = suggest or (lambda _incident_id: Suggestions.none())
        self.triage = triage or (lambda _incident_id: None)
        self.outbox = OutboxStore(store.engine)
        self.targets = {t.name: t for t in targets}
        self.api_url = api_url
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.clock = clock

    def run_once(self) -> int:
        """Deliver what is due; returns how many rows were attempted."""
        items = self.outbox.claim_due(self.clock())
        for item in items:
            self._deliver(item)
        return len(items)

    def run(self, stop: threading.Event, idle_s: float = 0.5, backoff: Backoff | None = None) -> None:
        """Deliver until ``stop``; a turn that fails (the database is down) is reported as
        the ``sender`` component failing and retried after a backoff, capped at 10 s so
        pages go out soon after the database is back."""
        run_loop("sender", self.health, stop, lambda: 0.0 if self.run_once() else idle_s,
                 backoff=backoff or Backoff(first_s=0.5, max_s=10.0))

    def _deliver(self, item: OutboxItem) -> None:
        target = self.targets.get(item.target)
        if target is None:
            self.outbox.give_up(item.id, f"no target {item.target!r} is configured")
            self._dropped(item, "no_target")
            return
        incident = self.store.get_incident(item.incident_id)
        if incident is None:
            self.outbox.give_up(item.id, f"incident {item.incident_id} does not exist")
            self._dropped(item, "no_incident")
            return
        if item.action == "trigger" and incident.transient and incident.status == "resolved":
            # All its alerts resolved inside the auto-pause: recorded, pages nobody. (A
            # trigger is only owed once the pause is over, so this is a safety net.)
            self.outbox.skip(item.id, "transient: resolved before its page was due")
            self._dropped(item, "skipped")
            return
        if item.action == "resolve" and incident.status == "open":
            # Held for reopen_window and an alert re-fired into it meanwhile: its page stays
            # open (a resolve now and a trigger after it would page someone again).
            self.outbox.skip(item.id, "re-opened within reopen_window: the page stays open")
            self._dropped(item, "skipped")
            return
        document = incident_document(incident, self.store.incident_events(item.incident_id, limit=500),
                                     self.api_url, self.suggest(incident.id), self.triage(incident.id))
        try:
            target.send(item, document)
        except DeliveryError as exc:
            if exc.retryable:
                # The target's state change is the warning (target_health); each row's
                # retry is detail, recorded in the outbox's last_error too.
                self.target_health.failing(target.name, str(exc))
                delay = min(self.backoff * 2 ** (item.attempts - 1), self.max_backoff)
                log.info("page %s failed (attempt %d), retrying in %s: %s", item.id, item.attempts, delay, exc)
                self.outbox.retry_later(item.id, str(exc), self.clock() + delay)
            else:
                # The target answered: it is up, and this page is wrong for it.
                self.target_health.ok(target.name)
                log.error("page %s refused, giving up: %s", item.id, exc)
                self.outbox.give_up(item.id, str(exc))
                self._dropped(item, "refused")
            return
        self.target_health.ok(target.name)
        self.outbox.mark_sent(item.id, self.clock())
        if self.observer is not None:
            self.observer.page_sent(item.target, item.action)

    def _dropped(self, item: OutboxItem, reason: str) -> None:
        if self.observer is not None:
            self.observer.page_dropped(item.target, reason)
