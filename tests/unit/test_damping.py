"""Damping: an alert family that fired, paged and cleared on its own pages nobody the next
time, until its incident changes or outlasts the family's lone episodes; the decision
says why, and explain() tells it."""

from __future__ import annotations

from typing import Any

from tests.conftest import make_event
from triage.correlation import Correlator
from triage.correlation.explain import explain
from triage.correlation.holds import AlertHistory, Change, HoldKind
from triage.models.embedder import HashingEmbedder
from triage.models.parameters import CorrelationParameters

DAY = 24 * 3600.0
NIGHT = 2 * DAY   # the third night: two lone episodes before it


def correlator(**params: Any) -> Correlator:
    return Correlator(CorrelationParameters(auto_pause=60, **params), embedder=HashingEmbedder())


def disk(seconds: float, status: str = "firing", severity: str = "warning", **fields: Any):  # type: ignore[no-untyped-def]
    return make_event(seconds, title="Host out of disk space", service=None, host="node-7", fingerprint="disk",
                      status=status, severity=severity, labels={"alertname": "HostOutOfDisk"}, **fields)


def decide(c: Correlator, event: Any) -> Any:
    return c.process(event, now=event.occurred_at)


def episode(c: Correlator, start: float, length: float = 900) -> list:  # type: ignore[type-arg]
    # (the repeat after its pause marks it paged, as the held-pages ticker would)
    return [c.process(e, now=e.occurred_at) for e in (disk(start), disk(start + min(120, length / 2)),
                                                       disk(start + length, "resolved"))]


def nights(c: Correlator) -> None:
    """Two nights on which the family fired alone, outlasted its pause and cleared."""
    episode(c, 0)
    episode(c, DAY)


def test_a_family_that_fired_alone_again_and_again_is_damped_and_says_why() -> None:
    c = correlator()
    first, _, _ = episode(c, 0)
    assert first.evidence.hold.kind is HoldKind.auto_pause and first.evidence.hold.episodes == 0
    again, _, _ = episode(c, DAY, length=600)   # one lone episode is not yet "again and again": it pages
    assert again.evidence.hold.kind is HoldKind.auto_pause and again.evidence.hold.episodes == 1
    second = decide(c, disk(NIGHT))
    hold = second.evidence.hold
    assert hold.kind is HoldKind.chronic and (hold.episodes, hold.sustained) == (2, 2)
    assert (hold.alone, hold.longest_s, hold.most_alerts) == (2, 900.0, 2)   # fired, resolved: 2 alert events
    incident = c.state.incidents[second.incident_id]
    # the hold expires when the episode outlasts the longest lone one (900 s) by its pause (60 s)
    assert incident.page_due_at == hold.until == disk(NIGHT + 960).occurred_at and incident.damped == hold
    sentence = explain(second.rule, second.evidence)
    assert "page damped, chronic" in sentence and "node-7" in sentence and "opened 2 incident(s) before" in sentence
    assert "2 alone, the longest 900 s" in sentence and "still fires at" in sentence
    # it stays quiet while it fires and resolves unchanged, and is not "transient" either
    later = decide(c, disk(NIGHT + 900, "resolved"))
    assert not later.evidence.transient and c.state.incidents[second.incident_id].last_notified_at is None


def test_transient_episodes_never_damp_and_a_critical_alert_always_pages() -> None:
    c = correlator()
    episode(c, 0, length=30)                  # resolved inside its pause: transient
    assert decide(c, disk(DAY)).evidence.hold.kind is HoldKind.auto_pause
    c = correlator()
    nights(c)
    critical = decide(c, disk(NIGHT, severity="critical"))
    assert critical.evidence.hold.kind is HoldKind.auto_pause


def test_a_damped_incident_pages_when_it_changes() -> None:
    c = correlator()
    nights(c)
    damped = decide(c, disk(NIGHT))
    # another template on the same host: an incident joins the episode
    joined = decide(c, make_event(NIGHT + 10, title="Kubelet eviction threshold met", service=None, host="node-7",
                                  fingerprint="evict", severity="warning", labels={"alertname": "KubeletEviction"}))
    assert joined.incident_id == damped.incident_id
    assert joined.evidence.release.change is Change.event
    assert "its page is due" in explain(joined.rule, joined.evidence)
    incident = c.state.incidents[damped.incident_id]
    assert incident.damped is None and incident.page_due_at is not None   # pages when its pause is over


def test_chronic_window_zero_turns_damping_off_and_the_history_forgets() -> None:
    c = correlator(chronic_window=0)
    nights(c)
    assert decide(c, disk(NIGHT)).evidence.hold.kind is HoldKind.auto_pause
    history = AlertHistory()
    history.opened("node|A", "x", disk(0).occurred_at)
    history.prune(disk(DAY).occurred_at, DAY / 2)
    assert history.families == {} and AlertHistory.from_snapshot(history.snapshot()) == AlertHistory()


def test_a_damped_episode_that_outlasts_the_familys_lone_episodes_pages() -> None:
    c = correlator()
    nights(c)
    damped = decide(c, disk(NIGHT))
    incident = c.state.incidents[damped.incident_id]
    assert damped.evidence.hold.damped
    assert not decide(c, disk(NIGHT + 900)).notify        # a repeat within the lone episodes' length: quiet
    late = decide(c, disk(NIGHT + 961))                      # past 900 + 60 s and still firing: it pages
    assert late.notify and incident.last_notified_at is not None


def test_more_alert_events_than_a_lone_episode_release_it() -> None:
    c = correlator()
    nights(c)
    damped = decide(c, disk(NIGHT))
    assert damped.evidence.hold.damped
    decide(c, disk(NIGHT + 100, "resolved"))
    refired = decide(c, disk(NIGHT + 200))                   # the third alert event: lone episodes had two
    assert refired.incident_id == damped.incident_id
    assert refired.evidence.release.change is Change.alerts
    assert "more than any lone episode" in explain(refired.rule, refired.evidence)


def test_a_family_that_came_with_other_alerts_is_a_symptom_and_not_damped() -> None:
    def evict(seconds: float, status: str = "firing") -> Any:
        return make_event(seconds, title="Kubelet eviction threshold met", service=None, host="node-7",
                          fingerprint="evict", severity="warning", status=status,
                          labels={"alertname": "KubeletEviction"})

    c = correlator()
    for night in (0, DAY):       # two nights of a real problem: the disk alert came with an eviction
        first = decide(c, disk(night))
        assert decide(c, evict(night + 10)).incident_id == first.incident_id
        for e in (disk(night + 120), disk(night + 900, "resolved"), evict(night + 900, "resolved")):
            decide(c, e)
    nights_alone = [episode(c, night)[0] for night in (2 * DAY, 3 * DAY)]   # then two nights alone
    assert all(d.evidence.hold.kind is HoldKind.auto_pause for d in nights_alone)
    incident = c.state.incidents[first.incident_id]
    record = c.state.models_for(incident.scope).history.families[incident.family or ""]
    assert (record.sustained, record.alone) == (4, 2) and not record.fires_alone   # not most of them alone
    assert decide(c, disk(4 * DAY)).evidence.hold.kind is HoldKind.auto_pause


def test_the_history_reads_its_first_format_as_no_lone_episodes() -> None:
    history = AlertHistory.from_snapshot({"format": 1, "families": {"node|A": ["x", 3, 2, "warning", 0.0, 10.0]}})
    record = history.families["node|A"]
    assert (record.episodes, record.sustained, record.alone, record.longest_s) == (3, 2, 0, 0.0)
    assert not record.fires_alone
    history.sustained("node|A", record.severity, alone=True, lasted_s=600.0, alerts=2)
    assert AlertHistory.from_snapshot(history.snapshot()).families == history.families
