"""The correlation engine, with time handed in (a frozen clock: T0 + seconds).

These tests use the hashing embedder (no model): what is under test is the engine's
logic, not MiniLM; tests/unit/test_embedder.py covers the real model.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests.conftest import T0, make_event
from triage.correlation import Action, Correlator
from triage.correlation.evidence import Blocked, EpisodeEnd, PreviousEpisode
from triage.correlation.explain import explain
from triage.correlation.stored_evidence import evidence_from_json
from triage.domain.scope import scope_of
from triage.correlation.state import IncidentKind
from triage.models.embedder import HashingEmbedder
from triage.models.parameters import CorrelationParameters
from triage.models.topology import ServiceGraph

EMBEDDER = HashingEmbedder()


def correlator(**params: Any) -> Correlator:
    return Correlator(CorrelationParameters(**params), embedder=EMBEDDER)


def run(c: Correlator, event_seconds: list[tuple[float, dict]]) -> list:  # type: ignore[type-arg]
    return [c.process(e := make_event(s, **f), now=e.occurred_at) for s, f in event_seconds]


def log(service: str = "checkout", title: str = "connection refused to cart", **extra: Any) -> dict[str, Any]:
    return {"kind": "log", "source": "otel", "severity": "error", "service": service, "title": title,
            "labels": {}, **extra}


def span(caller: str, callee: str, method: str = "hipstershop.Cart/GetCart", ms: int = 700,
         **extra: Any) -> dict[str, Any]:
    """An error span; ``ms`` changes its text (no duplicate) but not its template."""
    return {"kind": "span", "source": "otel", "severity": "error", "service": callee, "parent_service": caller,
            "title": method, "body": f"{method} failed: DEADLINE_EXCEEDED after {ms} ms", "labels": {}, **extra}


# -- duplicates, resolves, timers (unchanged from the baseline) -----------------------


def test_renotified_firing_alert_is_suppressed_on_its_incident() -> None:
    c = correlator()
    first, again = run(c, [(0, {"fingerprint": "fp1"}), (300, {"fingerprint": "fp1"})])
    assert first.action is Action.opened
    assert again.action is Action.suppressed and again.incident_id == first.incident_id
    assert again.rule == "duplicate" and again.evidence.seen_before == 1
    assert c.state.incidents[first.incident_id].suppressed_count == 1


def test_incident_resolves_when_all_its_alerts_resolve() -> None:
    c = correlator()
    decisions = run(c, [
        (0, {"fingerprint": "a"}), (10, {"fingerprint": "b"}),
        (60, {"fingerprint": "a", "status": "resolved"}),
        (70, {"fingerprint": "b", "status": "resolved"}),
    ])
    incident = c.state.incidents[decisions[0].incident_id]
    assert decisions[1].incident_id == decisions[0].incident_id
    assert decisions[2].rule == "alert_resolved" and decisions[2].evidence.still_firing == 1
    assert decisions[3].evidence.incident_resolved is True
    assert incident.status == "resolved" and incident.resolved_at == T0 + timedelta(seconds=70)


def test_alert_firing_again_soon_after_resolve_reopens_its_incident() -> None:
    c = correlator(reopen_window=120)
    d = run(c, [(0, {"fingerprint": "a"}), (30, {"fingerprint": "a", "status": "resolved"}),
                (100, {"fingerprint": "a"})])
    assert d[2].action is Action.attached and d[2].incident_id == d[0].incident_id
    assert d[2].evidence.reopened is True and c.state.incidents[d[0].incident_id].is_open
    assert "reopens" in explain(d[2].rule, d[2].evidence)


def test_alert_firing_again_long_after_resolve_is_a_new_episode() -> None:
    c = correlator(window=60, reopen_window=120)
    d = run(c, [(0, {"fingerprint": "a"}), (30, {"fingerprint": "a", "status": "resolved"}),
                (1000, {"fingerprint": "a"})])
    assert d[2].action is Action.opened and d[2].incident_id != d[0].incident_id


def test_an_alert_saying_no_start_and_silent_past_resolve_timeout_is_a_new_episode() -> None:
    # A source that sends no resolves: Alertmanager's resolve_timeout ends the episode.
    c = correlator(resolve_timeout=600)
    d = run(c, [(0, {"fingerprint": "a"}), (300, {"fingerprint": "a"}), (1000, {"fingerprint": "a"})])
    assert d[1].action is Action.suppressed                 # re-sent within the timeout
    assert d[2].action is Action.opened and d[2].incident_id != d[0].incident_id
    old = c.state.incidents[d[0].incident_id]
    assert old.status == "resolved" and old.resolved_at == T0 + timedelta(seconds=300)
    assert d[2].evidence.previous_episode == PreviousEpisode(incident=old.id, ended=EpisodeEnd.resolve_timeout)
    assert "silent past resolve_timeout" in explain(d[2].rule, d[2].evidence)


def test_an_alert_with_a_start_time_is_one_episode_however_long_it_is_silent() -> None:
    # A chronic alert re-sent every repeat_interval says the same start: still one episode.
    c = correlator(resolve_timeout=600)
    d = run(c, [(s, {"fingerprint": "a", "starts_at": T0}) for s in (0, 4 * 3600)])
    assert d[1].action is Action.suppressed and d[1].incident_id == d[0].incident_id
    # A start after we last heard of it is a new episode, whatever the timeout.
    c = correlator(resolve_timeout=10 ** 6)
    d = run(c, [(0, {"fingerprint": "a", "starts_at": T0}),
                (4000, {"fingerprint": "a", "starts_at": T0 + timedelta(seconds=3900)})])
    assert d[1].action is Action.opened
    assert d[1].evidence.previous_episode.ended == "started_later"
    assert d[0].evidence.previous_episode is None


def test_identical_log_lines_are_duplicates_within_dedup_window() -> None:
    c = correlator(dedup_window=60)
    d = run(c, [(0, log()), (30, log()), (100, log())])
    assert d[1].action is Action.suppressed
    assert d[2].action is Action.attached  # past dedup_window: a repeat, not a duplicate


def test_pages_follow_alertmanager_timers() -> None:
    c = correlator(group_interval=300, repeat_interval=3600, auto_pause=0)   # (auto_pause: its own tests)
    d = run(c, [(0, {"fingerprint": "a"}), (60, {"fingerprint": "b"}), (120, {"fingerprint": "a"}),
                (250, {"fingerprint": "c"}), (301, {"fingerprint": "d"}), (3700, {"fingerprint": "a"})])
    assert len({x.incident_id for x in d}) == 1
    assert [x.notify for x in d] == [True, False, False, False, True, False]


def test_batch_is_decided_in_event_time_order() -> None:
    c = correlator()
    late, early = make_event(50, fingerprint="x"), make_event(0, fingerprint="y")
    decisions = c.process_batch([late, early])
    assert [x.event_id for x in decisions] == [early.id, late.id]
    assert decisions[0].action is Action.opened and decisions[1].action is Action.attached


def test_decisions_carry_the_parameters_version() -> None:
    c = Correlator(parameters_version=7, embedder=EMBEDDER)
    first, second = run(c, [(0, {"fingerprint": "a"}), (5, {"fingerprint": "b"})])
    assert first.parameters_version == 7 and second.parameters_version == 7
    assert second.evidence.criteria.parameters_version == 7 and "parameters v7" in explain(second.rule, second.evidence)


# -- grouping by evidence -----------------------------------------------------------


def test_same_service_within_window_attaches_with_evidence() -> None:
    c = correlator(window=300)
    a, b = run(c, [(0, {"fingerprint": "a"}), (40, {"fingerprint": "b", "title": "Latency"})])
    assert b.action is Action.attached and b.incident_id == a.incident_id
    assert b.rule == "correlated"
    ev = b.evidence
    assert ev.match.gap_s == 40 and ev.criteria.window_s == 300 and ev.match.hops == 0
    assert set(ev.match.components.as_json()) == {"text", "topology", "time", "labels"}
    assert ev.match.components.topology == 1.0 and ev.match.score >= ev.criteria.threshold == 0.55
    assert explain(b.rule, ev).startswith("joined because: same service checkout, 40 s after")


def test_gap_longer_than_window_opens_a_new_incident() -> None:
    c = correlator(window=300)
    a, b = run(c, [(0, {"fingerprint": "a"}), (301, {"fingerprint": "b"})])
    assert b.action is Action.opened and b.incident_id != a.incident_id
    assert b.rule == "new_incident" and b.evidence.best_candidate is None


def test_unrelated_service_opens_its_own_incident() -> None:
    c = correlator()
    a, b = run(c, [(0, {"fingerprint": "a"}), (1, {"fingerprint": "b", "service": "payments"})])
    assert b.action is Action.opened and b.incident_id != a.incident_id
    assert b.evidence.best_candidate.blocked == "no_topology"
    assert "no known relation" in explain(b.rule, b.evidence)


def test_a_learned_call_edge_joins_the_caller_to_the_callee_incident() -> None:
    c = correlator(threshold=0.45)   # topology and time alone, whatever the texts say
    d = run(c, [
        (0, {"fingerprint": "a", "service": "payments", "title": "Payments 5xx"}),
        (10, span("checkout", "payments", "hipstershop.Payment/Charge")),   # teaches checkout -> payments
        (20, log("checkout", "rpc error calling payments: deadline exceeded")),
    ])
    assert {x.incident_id for x in d} == {d[0].incident_id}
    ev = d[2].evidence
    assert ev.match.hops == 1 and ev.match.via == "payments" and ev.match.components.topology == 0.5
    assert "checkout→payments 1 hop" in explain(d[2].rule, ev)


def test_a_neighbour_joins_a_young_incident_at_its_onset_below_the_threshold() -> None:
    events = [
        (0, {"fingerprint": "a", "service": "payments", "title": "Payments 5xx"}),
        (10, span("checkout", "payments", "hipstershop.Payment/Charge")),   # teaches checkout -> payments
        (20, log("checkout", "worker pool exhausted, queue length 512")),   # nothing in common but the graph
    ]
    d = run(correlator(), events)
    ev = d[2].evidence
    assert d[2].incident_id == d[0].incident_id and ev.match.hops == 1
    assert 0.45 <= ev.match.score < 0.55 and ev.onset is not None and ev.onset.window_s == 300
    assert ev.as_json()["onset"] == {"threshold": 0.45, "window_s": 300.0}
    assert evidence_from_json("correlated", json.loads(json.dumps(ev.as_json()))) == ev   # as the store reads it
    assert ("≥ 0.45, 0.55 less the onset margin, at the incident's onset: 20 s old (onset window 300 s), "
            "1 hop(s) away") in explain(d[2].rule, ev)
    # past its onset, or with the rule off, the same log opens a group of its own
    for later in (correlator(onset_window=15), correlator(onset_window=0), correlator(onset_margin=0)):
        d = run(later, events)
        assert d[2].action is Action.opened and d[2].evidence.best_candidate.score < 0.55


def test_at_the_onset_a_callee_record_does_not_join_its_callers_young_incident() -> None:
    # A fault spreads from a callee to its callers: payments' log after checkout's group
    # formed is trouble of its own. Its alert joins (a rule fires after its callers' errors).
    def events(kind: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
        return [(0, {"fingerprint": "a", "service": "checkout", "title": "Checkout 5xx"}), (20, kind)]

    def declared(*pairs: tuple[str, str]) -> Correlator:
        graph = ServiceGraph()
        for caller, callee in pairs:
            graph.declare(caller, callee)
        return Correlator(CorrelationParameters(), embedder=EMBEDDER, topology=graph)

    record = log("payments", "worker pool exhausted, queue length 512")
    d = run(declared(("checkout", "payments")), events(record))
    best = d[1].evidence.best_candidate
    assert d[1].action is Action.opened and best.incident == d[0].incident_id and best.hops == 1
    assert 0.45 <= best.score < 0.55 and best.blocked is Blocked.downstream
    assert "takes no log or span of a service its own services only call" in explain(d[1].rule, d[1].evidence)
    assert evidence_from_json("noise_group", json.loads(json.dumps(d[1].evidence.as_json()))) == d[1].evidence
    alert = {"fingerprint": "p", "service": "payments", "title": "Payments worker pool exhausted"}
    d = run(declared(("checkout", "payments")), events(alert))
    assert d[1].incident_id == d[0].incident_id and d[1].evidence.onset is not None
    # the other way along the call (and where the two call each other) it joins
    for pairs in ((("payments", "checkout"),), (("checkout", "payments"), ("payments", "checkout"))):
        d = run(declared(*pairs), events(record))
        assert d[1].incident_id == d[0].incident_id and d[1].evidence.onset is not None


def test_at_the_onset_a_host_event_joins_only_a_group_that_is_still_records() -> None:
    node_alert = {"fingerprint": "h", "service": None, "host": "node-1", "title": "Node CPU throttled",
                  "labels": {"alertname": "NodeCpu"}}                          # 1 hop: payments on node-1
    # A service's alert opened the group: the node's alert after it opens its own (a
    # node's own CPU or disk alert would become the incident's probable cause).
    d = run(correlator(), [
        (0, {"fingerprint": "a", "service": "payments", "title": "Payments 5xx", "host": "node-1"}),
        (10, node_alert),
    ])
    best = d[1].evidence.best_candidate
    assert d[1].action is Action.opened and best.hops == 1 and 0.45 <= best.score < 0.55
    # The group is still its pods' records: the node's alert is its first, and joins it.
    records = log("payments", "rpc error: deadline exceeded", host="node-1")
    d = run(correlator(), [(0, records), (10, node_alert)])
    assert d[0].action is Action.opened and d[0].rule == "noise_group"
    assert d[1].incident_id == d[0].incident_id and d[1].evidence.onset is not None
    assert d[1].evidence.promoted and d[1].evidence.match.hops == 1 and d[1].evidence.match.score < 0.55
    # past the onset window it does not
    d = run(correlator(onset_window=5), [(0, records), (10, node_alert)])
    assert d[1].action is Action.opened


def test_at_the_onset_two_services_on_one_failing_host_join_one_group() -> None:
    # A node's fault shows on every pod it runs: payments' and email's records, on
    # node-1 both, are two hops apart (payments - node-1 - email) and share no call.
    email = log("email", "rpc error: deadline exceeded", host="node-1")
    events = [(0, log("payments", "rpc error: code = DeadlineExceeded desc = context deadline exceeded charging card",
                      host="node-1")), (20, email)]
    d = run(correlator(), events)
    ev = d[1].evidence
    assert d[1].incident_id == d[0].incident_id and ev.onset is not None
    assert ev.match.hops == 2 and ev.match.via == "payments" and ev.match.score < 0.55
    assert "2 hop(s) away" in explain(d[1].rule, ev)
    # beyond the graph's reach (max_hops 1), or on another host, a group of its own
    d = run(correlator(max_hops=1), events)
    assert d[1].action is Action.opened
    d = run(correlator(), [events[0], (20, {**email, "host": "node-2"})])
    assert d[1].action is Action.opened


def test_declared_topology_is_used_before_any_span_is_seen() -> None:
    graph = ServiceGraph()
    graph.declare("checkout", "payments")
    c = Correlator(CorrelationParameters(threshold=0.45), embedder=EMBEDDER, topology=graph)
    a, b = run(c, [(0, {"fingerprint": "a", "service": "payments"}), (5, log("checkout", "payment failed"))])
    assert b.incident_id == a.incident_id and b.evidence.match.hops == 1


def test_host_alert_joins_the_incident_of_a_service_on_that_host() -> None:
    c = correlator(threshold=0.45)
    a, b = run(c, [(0, {"fingerprint": "a", "host": "node-1"}),
                   (30, {"fingerprint": "h", "service": None, "host": "node-1", "title": "Node disk full",
                         "labels": {"alertname": "NodeDiskFull"}})])
    assert b.incident_id == a.incident_id and b.evidence.service == "host:node-1"
    assert b.evidence.match.hops == 1


def test_event_without_service_or_host_joins_by_template_and_time_only() -> None:
    c = correlator()
    cluster = {"service": None, "title": "CoreDNS panics", "labels": {"alertname": "CorednsPanic"}}
    a, b, other = run(c, [(0, {"fingerprint": "c1", **cluster}), (20, {"fingerprint": "c2", **cluster}),
                          (25, {"fingerprint": "x", "service": None, "title": "API server errors"})])
    assert b.incident_id == a.incident_id and b.evidence.match.text_match == "same_template"
    assert b.evidence.match.components.topology is None   # no place in the graph: left out
    assert other.action is Action.opened


def test_incident_stops_growing_after_max_age() -> None:
    c = correlator(window=300, max_incident_age=600)
    d = run(c, [(s, {"fingerprint": f"f{s}"}) for s in (0, 200, 400, 601)])
    assert [x.action for x in d] == [Action.opened, Action.attached, Action.attached, Action.opened]


def test_settled_incident_only_accepts_what_it_has_shown() -> None:
    c = correlator(propagation_window=600, window=900)
    d = run(c, [
        (0, {"fingerprint": "a", "service": "payments"}),
        (10, span("checkout", "payments", "hipstershop.Payment/Charge")),
        (700, span("checkout", "payments", "hipstershop.Payment/Charge", ms=900)),  # shown before: joins
        (710, log("checkout", "disk quota exceeded on volume")),              # new to it, too late
    ])
    assert d[2].incident_id == d[0].incident_id and d[2].evidence.match.gap_from == "template"
    assert d[3].action is Action.opened and d[3].evidence.best_candidate.blocked == "settled"
    assert "propagation window" in explain(d[3].rule, d[3].evidence)


def _long_fault_then_5xx(at: float) -> list:  # type: ignore[type-arg]
    """A disk fault on cart, kept open for hours by its spans; frontend's 5xx rate fired
    with it at 30 s, and fires again at ``at``."""
    c = correlator(propagation_window=900, window=300, max_incident_age=6 * 3600, resolve_timeout=3600)
    five_xx = {"service": "frontend", "title": "Istio high 5xx error rate"}
    stream = [(0.0, {"fingerprint": "disk", "service": "cart", "title": "Disk almost full"}),
              (10.0, span("frontend", "cart")),
              (30.0, {"fingerprint": "5xx-1", **five_xx}),
              (600.0, {"fingerprint": "5xx-1", "status": "resolved", **five_xx})]
    stream += [(float(s), span("frontend", "cart", ms=700 + s // 250)) for s in range(850, int(at), 250)]
    return run(c, [*stream, (at, {"fingerprint": "5xx-2", **five_xx})])


def test_a_signal_the_incident_has_not_shown_for_resolve_timeout_is_new_to_it() -> None:
    """A long fault's incident stays open for hours; an alert it showed once, long ago,
    firing again is not a repeat of it but the first alert of whatever broke now."""
    soon = _long_fault_then_5xx(2000.0)
    assert soon[-1].incident_id == soon[0].incident_id and soon[-1].evidence.match.gap_from == "template"
    late = _long_fault_then_5xx(4500.0)
    assert late[-2].incident_id == late[0].incident_id   # the fault's own spans still join it
    assert late[-1].action is Action.opened and late[-1].evidence.best_candidate.blocked == "settled"


def test_a_young_cluster_alerts_incident_takes_any_services_events() -> None:
    """A cluster alert (neither service nor host) has no place in the service graph, yet a
    DNS failure reaches every service at once: while its incident is young the service's
    symptom joins it on text and time, its topology unknown; later it opens its own."""
    dns = {"fingerprint": "coredns", "service": None, "host": None, "title": "CoreDNS dns lookup failures",
           "labels": {"alertname": "CoreDNSErrors"}}
    symptom = log("checkout", "dns lookup failures resolving cart")
    c = correlator(onset_window=300)
    young = run(c, [(0, dns), (60, symptom)])
    assert young[1].incident_id == young[0].incident_id
    assert young[1].evidence.match.components.topology is None
    c = correlator(onset_window=300)
    old = run(c, [(0, dns), (400, symptom)])
    assert old[1].action is Action.opened


def test_a_datastore_its_callers_logs_name_joins_their_incident() -> None:
    """A datastore sends no spans: the graph learns who uses it from the callers' own
    records naming it, so its alert joins the incident of the service that calls it (with
    no edge it would page apart)."""
    redis = {"fingerprint": "redis-down", "service": "redis-cart", "host": "node-1", "title": "Redis down",
             "labels": {"alertname": "RedisDown"}}
    events = [
        (0, log("redis-cart", "background saving started", host="node-1", severity="info")),
        (7200, {"fingerprint": "cart-5xx", "service": "cartservice", "host": "node-2",
                "title": "Istio high 5xx error rate", "labels": {"alertname": "IstioHigh5xxErrorRate"}}),
        (7210, log("cartservice", "rpc error: code = DeadlineExceeded (calling redis-cart)", host="node-2")),
        (7230, redis),
    ]
    c = correlator()
    d = run(c, events)
    assert d[3].incident_id == d[1].incident_id
    assert d[3].evidence.match.components.topology > 0
    graph = c.state.models_for(scope_of(make_event(0))).graph
    assert ("cartservice", "redis-cart", "mentioned") in graph.edges()
    assert graph.mentions == {("cartservice", "redis-cart"): (T0 + timedelta(seconds=7210)).timestamp()}
    # a name the stream has not shown as a service is a word, not a node
    assert ("cartservice", "rpc") not in {(a, b) for a, b, _ in graph.edges()}
    unnamed = run(correlator(), [*events[:2], (7210, log("cartservice", "rpc error: code = DeadlineExceeded",
                                                               host="node-2")), (7230, redis)])
    assert unnamed[3].action is Action.opened


def test_young_incident_takes_a_new_kind_of_message_on_its_service() -> None:
    c = correlator(propagation_window=600)
    a, b = run(c, [(0, {"fingerprint": "a"}), (60, log("checkout", "disk quota exceeded on volume"))])
    assert b.incident_id == a.incident_id


def test_the_incident_that_has_shown_the_signal_takes_precedence() -> None:
    c = correlator(propagation_window=3600, window=3600)
    d = run(c, [
        (0, {"fingerprint": "a", "service": "cart", "title": "Cart latency"}),
        (5, span("checkout", "cart", "hipstershop.Cart/GetCart")),
        (10, {"fingerprint": "b", "service": "payments", "title": "Payments down"}),
        (15, span("checkout", "payments", "hipstershop.Payment/Charge")),
        (20, span("checkout", "cart", "hipstershop.Cart/GetCart", ms=812)),  # same template, no duplicate
    ])
    assert d[2].incident_id != d[0].incident_id            # payments is not related to cart yet
    assert d[4].incident_id == d[0].incident_id and d[4].evidence.match.gap_from == "template"


# -- noise groups and pages ----------------------------------------------------------


def test_a_lone_log_opens_a_noise_group_that_pages_nobody() -> None:
    c = correlator()
    [d] = run(c, [(0, log())])
    assert d.action is Action.opened and d.rule == "noise_group" and d.notify is False
    assert c.state.incidents[d.incident_id].kind == IncidentKind.noise
    assert "pages nobody" in explain(d.rule, d.evidence)


def test_an_alert_joining_a_noise_group_makes_it_an_incident_and_pages() -> None:
    c = correlator(auto_pause=0)
    first, alert = run(c, [(0, log()), (20, {"fingerprint": "a", "title": "Checkout 5xx"})])
    assert alert.incident_id == first.incident_id and alert.evidence.promoted is True
    incident = c.state.incidents[first.incident_id]
    assert incident.kind == IncidentKind.incident and incident.title == "Checkout 5xx" and alert.notify is True


def test_a_lone_log_stops_attracting_events_after_lone_window() -> None:
    c = correlator(lone_window=60)
    first, second = run(c, [(0, log()), (90, log(title="connection refused to payments"))])
    assert second.action is Action.opened and second.incident_id != first.incident_id


def test_transient_alert_within_auto_pause_pages_nobody() -> None:
    c = correlator(auto_pause=120)
    d = run(c, [(0, {"fingerprint": "a"}), (60, {"fingerprint": "a", "status": "resolved"})])
    assert [x.notify for x in d] == [False, False]
    incident = c.state.incidents[d[0].incident_id]
    assert incident.transient and incident.status == "resolved"
    assert d[1].evidence.transient is True and "nobody paged" in explain(d[1].rule, d[1].evidence)


def test_alert_still_firing_after_auto_pause_pages_on_its_next_event() -> None:
    # (With no next event, the store's ticker sends it: tests/integration/test_auto_pause.py.)
    c = correlator(auto_pause=120)
    d = run(c, [(0, {"fingerprint": "a"}), (60, {"fingerprint": "b"}), (130, {"fingerprint": "a"})])
    assert [x.notify for x in d] == [False, False, True]


def test_a_transient_incident_that_fires_again_gets_a_new_pause() -> None:
    c = correlator(auto_pause=120)
    d = run(c, [(0, {"fingerprint": "a"}), (30, {"fingerprint": "a", "status": "resolved"}),
                (60, {"fingerprint": "a"}), (170, {"fingerprint": "b"}), (190, {"fingerprint": "b"})])
    assert d[2].incident_id == d[0].incident_id and d[2].evidence.reopened is True
    incident = c.state.incidents[d[0].incident_id]
    assert not incident.transient
    assert incident.page_due_at == T0 + timedelta(seconds=180)   # 60 + 120, not the old 0 + 120
    assert [x.notify for x in d] == [False, False, False, False, True]


# -- scope ---------------------------------------------------------------------------


def test_every_event_shares_one_scope_unless_it_names_a_domain() -> None:
    assert scope_of(make_event(0)) == scope_of(make_event(0, service="payments", host="node-9")) == "global"
    assert scope_of(make_event(0, labels={"triage.domain": "eu"})) == "domain:eu"
    c = correlator()
    a, b = run(c, [(0, {"fingerprint": "a"}), (5, {"fingerprint": "b", "labels": {"triage.domain": "eu"}})])
    assert b.incident_id != a.incident_id and b.evidence.scope == "domain:eu"


def test_the_same_alert_in_two_domains_is_two_signals_not_a_duplicate() -> None:
    # Two clusters' Alertmanagers fingerprint the same label set alike; the domain is
    # what tells them apart, so a repeat in one domain is never a duplicate of the other's.
    c = correlator()
    eu, us, eu_again = run(c, [(0, {"fingerprint": "fp", "labels": {"triage.domain": "eu"}}),
                               (5, {"fingerprint": "fp", "labels": {"triage.domain": "us"}}),
                               (10, {"fingerprint": "fp", "labels": {"triage.domain": "eu"}})])
    assert us.action is Action.opened and us.incident_id != eu.incident_id
    assert us.evidence.scope == "domain:us"
    assert eu_again.action is Action.suppressed and eu_again.incident_id == eu.incident_id
    assert len(c.state.signals) == 2


def test_every_event_lands_in_exactly_one_group() -> None:
    c = correlator()
    events = [make_event(i * 7, fingerprint=f"f{i % 3}", service=["checkout", "cart", None][i % 3],
                         host="node-1" if i % 3 == 2 else None) for i in range(30)]
    decisions = c.process_batch(events)
    assert sorted(d.event_id for d in decisions) == sorted(e.id for e in events)
    assert all(d.incident_id in c.state.incidents for d in decisions)


def test_a_kept_correlator_forgets_incidents_its_new_state_no_longer_holds() -> None:
    """``adopt`` keeps the indexes across batches; an incident the next state leaves out
    (no longer accepting events) must leave them too, or they would grow for ever."""
    from triage.correlation.state import CorrelationState

    c = correlator()
    [opened] = run(c, [(0, {"fingerprint": "fp1"})])
    index = c._scopes[scope_of(make_event(0))]
    assert opened.incident_id in index.by_node["checkout"]
    c.adopt(CorrelationState())
    c._prune(T0 + timedelta(days=1))
    assert opened.incident_id not in index.members
    assert all(opened.incident_id not in ids for ids in index.by_node.values())
