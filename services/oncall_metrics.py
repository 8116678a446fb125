"""The on-call figures of the last seven days as Prometheus gauges, for the Grafana
dashboard: the same computation as ``GET /stats/oncall`` (``triage.services.oncall``),
over the incidents opened in the week before now.

They come from the store, not from counters of this process, so every API replica exports
the same values and a restart loses nothing. A scrape never waits for the store: it gets
the figures of the last refresh, and starts a refresh in a thread of its own when they are
older than a minute (after a failure: with backoff). A refresh that fails keeps the stale
figures, logs once, and sets ``triage_oncall_figures_up`` to 0 until one works. Like the
page targets' health (``triage.paging.sender``), not in ``/readyz``: the API still does
its work, and an unready replica would stop taking webhooks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from triage.domain.health import Backoff, Health, report_failure
from triage.services.oncall import OncallFigures, oncall_report

__all__ = ["COMPONENT", "OncallCollector"]

COMPONENT = "oncall-figures"
WINDOW = timedelta(days=7)

# (name, help, the value from the figures); a figure no incident had data for has no sample.
_GAUGES: tuple[tuple[str, str, Callable[[OncallFigures], float | None]], ...] = (
    ("triage_oncall_mttd_seconds", "Mean time to detect, incidents opened in the last 7 days: first event to "
     "first page", lambda f: f.mttd_s.value),
    ("triage_oncall_mtta_seconds", "Mean time to acknowledge, incidents opened in the last 7 days: first page to "
     "a person's acknowledgement (PagerDuty webhooks, feedback API)", lambda f: f.mtta_s.value),
    ("triage_oncall_mttr_seconds", "Mean time to resolve, incidents opened in the last 7 days: first page to the "
     "resolve", lambda f: f.mttr_s.value),
    ("triage_oncall_alert_precision_ratio", "Share of the last 7 days' pages whose incident a person acknowledged, "
     "resolved, merged or split", lambda f: f.alert_precision.value),
    ("triage_oncall_pages", "Pages (decisions that made a page or update due) of incidents opened in the last "
     "7 days", lambda f: float(f.pages)),
    ("triage_oncall_paged_incidents", "Incidents opened in the last 7 days that paged", lambda f: float(f.paged)),
    ("triage_oncall_unacknowledged_incidents", "Incidents opened in the last 7 days that paged and that nobody "
     "acknowledged", lambda f: float(f.mtta_s.lacking)),
)


_UP = ("triage_oncall_figures_up", "1 while the on-call figures' last refresh from the store worked, 0 while "
       "it fails (the gauges keep the last figures; retried with backoff)")


class OncallCollector(Collector):
    def __init__(self, engine: sa.Engine, *, ttl_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.engine = engine
        self._now = now
        self.health = Health()   # its own, which /readyz does not read (module docstring)
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._figures: OncallFigures | None = None
        self._next_at = 0.0            # monotonic time from which a scrape refreshes
        self._running = False
        self._backoff = Backoff(first_s=1.0, max_s=ttl_s)
        self.refreshed = threading.Event()   # set after each refresh, ok or not (tests wait on it)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, help_text, _ in _GAUGES:
            yield GaugeMetricFamily(name, help_text)
        yield GaugeMetricFamily(*_UP)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self._maybe_refresh()
        figures = self._figures
        for name, help_text, value_of in _GAUGES:
            family = GaugeMetricFamily(name, help_text)
            value = value_of(figures) if figures is not None else None
            if value is not None:
                family.add_metric([], value)
            yield family
        yield GaugeMetricFamily(*_UP, value=1.0 if self.health.is_ok(COMPONENT) else 0.0)

    def _maybe_refresh(self) -> None:
        with self._lock:
            if self._running or self._clock() < self._next_at:
                return
            self._running = True
        self.refreshed.clear()
        threading.Thread(target=self._refresh, name=COMPONENT, daemon=True).start()

    def _refresh(self) -> None:
        try:
            until = self._now()
            self._figures = oncall_report(self.engine, until - WINDOW, until).total
        except Exception as exc:  # noqa: BLE001 - any failure is shown (Health) and retried at a later scrape
            report_failure(self.health, COMPONENT, exc)
            delay = self._backoff.next()
        else:
            self.health.ok(COMPONENT)
            self._backoff.reset()
            delay = self.ttl_s
        with self._lock:
            self._next_at = self._clock() + delay
            self._running = False
        self.refreshed.set()
