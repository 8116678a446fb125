"""A page's title (what is wrong where) and urgency (PagerDuty Events v2's high/low)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.conftest import make_event
from triage.correlation.holds import Hold, HoldKind
from triage.domain.event import Severity
from triage.paging.summary import Novelty, Urgency, novelty_of, page_title, pagerduty_severity, urgency_of

AT = datetime(2026, 3, 2, tzinfo=timezone.utc)


def alert(seconds: float, name: str, service: str | None = "cartservice", **fields: object):  # type: ignore[no-untyped-def]
    return make_event(seconds, title=f"{name} (instance 10.0.0.1)", service=service,
                      labels={"alertname": name}, **fields)


def test_the_title_names_the_opening_alert_where_it_fired_and_what_joined() -> None:
    events = [alert(5, "HighLatency", "frontend"), alert(0, "KubePodCrashLooping"),
              alert(7, "HighLatency", "checkoutservice"), alert(9, "KubePodCrashLooping"),   # the same again
              make_event(3, kind="log", title="panic", service="cartservice")]
    assert page_title(events, ["cartservice", "checkoutservice", "frontend"], "x") == \
        "cartservice: KubePodCrashLooping + 2 related alerts on 3 services"


def test_a_lone_alert_is_its_own_title_and_a_host_stands_for_a_missing_service() -> None:
    assert page_title([alert(0, "NodeNotReady", None, host="node-7")], [], "x") == "node-7: NodeNotReady"
    assert page_title([alert(0, "Disk", None, host="node-7"), alert(1, "Disk", None, host="node-8")], [], "x") == \
        "node-7: Disk + 1 related alert on 2 services"
    # no firing alert (all resolved, or logs only): the incident's own title
    assert page_title([alert(0, "Disk", status="resolved")], [], "Disk filling") == "Disk filling"


def _hold(episodes: int, sustained: int, kind: HoldKind = HoldKind.auto_pause) -> Hold:
    return Hold(kind, AT, "cartservice|A1", "Disk", episodes, sustained)


def test_novelty_comes_from_the_family_history_the_opening_decision_quotes() -> None:
    assert novelty_of(None) is None
    assert novelty_of(Hold(HoldKind.auto_pause, AT)) is None          # a hold that names no family
    assert novelty_of(_hold(0, 0)) is Novelty.first_seen
    assert novelty_of(_hold(3, 0)) is Novelty.rare                     # only transients before
    assert novelty_of(_hold(3, 1)) is Novelty.frequent
    assert novelty_of(_hold(3, 1, HoldKind.chronic)) is Novelty.frequent


@pytest.mark.parametrize(("severity", "novelty", "urgency"), [
    (Severity.critical, Novelty.frequent, Urgency.high),
    (Severity.error, None, Urgency.high),
    (Severity.error, Novelty.rare, Urgency.high),
    (Severity.error, Novelty.frequent, Urgency.low),
    (Severity.warning, Novelty.first_seen, Urgency.high),
    (Severity.warning, Novelty.rare, Urgency.low),
    (Severity.warning, None, Urgency.low),
    (Severity.info, Novelty.first_seen, Urgency.low),
])
def test_urgency_from_severity_and_novelty(severity: Severity, novelty: Novelty | None, urgency: Urgency) -> None:
    assert urgency_of(severity, novelty) is urgency


def test_the_pagerduty_severity_gives_the_urgency_under_severity_based_rules() -> None:
    # PagerDuty: critical and error are high urgency, warning and info low.
    assert pagerduty_severity(Severity.critical, Urgency.high) == "critical"
    assert pagerduty_severity(Severity.warning, Urgency.high) == "error"
    assert pagerduty_severity(Severity.error, Urgency.low) == "warning"
    assert pagerduty_severity(Severity.debug, Urgency.low) == "info"
