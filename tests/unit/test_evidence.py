"""Typed evidence: the membership row's JSON written as ever, read back into the same types,
and stored decisions of every age explained as they always were."""

from __future__ import annotations

import dataclasses
import gzip
import json
from datetime import datetime, timezone
from importlib.resources import files
from typing import Any

import pytest

from tests.conftest import make_event
from triage.correlation import Correlator, Decision
from triage.correlation.evidence import (
    BaselineJoined, BaselineOpened, Blocked, Candidate, Components, Criteria, Duplicate, EpisodeEnd, Evidence, GapFrom,
    Joined, Merged, Opened, Original, PreviousEpisode, Resolve, Rule, Split, TextMatch, Unrecognized, Weights,
    rule_of,
)
from triage.correlation.explain import explain
from triage.correlation.stored_evidence import evidence_from_json
from triage.ingest.decode import event_from_dict
from triage.models.embedder import HashingEmbedder
from triage.models.alert_families import fit_families
from triage.models.parameters import CorrelationParameters

EMBEDDER = HashingEmbedder()


def stored(evidence: Evidence) -> Any:
    """The document as the store writes it and reads it back (through JSON text)."""
    return json.loads(json.dumps(evidence.as_json()))


def assert_round_trips(decision: Decision) -> None:
    document = stored(decision.evidence)
    back = evidence_from_json(decision.rule.value, document)
    assert back == decision.evidence, decision.rule
    assert back.as_json() is document                         # read back: written back as stored
    assert dataclasses.replace(back).as_json() == document    # and its fields make the same document
    assert explain(decision.rule, back) == explain(decision.rule, decision.evidence)


def test_every_decision_on_the_bundled_storm_reads_back_as_it_was_decided() -> None:
    with gzip.open(str(files("triage") / "data" / "sample_storm.jsonl.gz"), "rt") as lines:
        events = [event_from_dict(json.loads(line)) for line in lines]
    decisions = Correlator(CorrelationParameters(auto_pause=300), embedder=EMBEDDER).process_batch(events)
    assert {d.rule for d in decisions} >= {Rule.duplicate, Rule.correlated, Rule.new_incident, Rule.noise_group,
                                           Rule.alert_resolved}
    assert any(isinstance(d.evidence, Opened) and d.evidence.best_candidate for d in decisions)
    for decision in decisions:
        assert_round_trips(decision)


def test_episodes_reopens_promotions_transients_and_families_read_back() -> None:
    texts = ["Redis out of memory on <*>", "[Triggered] Redis out of memory on <*>", "Redis memory full on <*>",
             "Kubernetes pod crash looping <*>", "Kubernetes pod crash looping again <*>", "disk quota exceeded"]
    families = fit_families(texts, EMBEDDER.embed(texts))
    c = Correlator(CorrelationParameters(auto_pause=60, reopen_window=600, resolve_timeout=600),
                   embedder=EMBEDDER, families=families)
    log = {"kind": "log", "source": "otel", "severity": "error", "title": "connection refused to cart", "labels": {}}
    decisions = [c.process(e, now=e.occurred_at) for e in [
        make_event(0, **log),                                                    # a noise group
        make_event(10, fingerprint="a", title="Redis out of memory on redis-1"),  # promotes it
        make_event(20, fingerprint="a", status="resolved"),                      # resolves it: transient
        make_event(30, fingerprint="a", title="Redis out of memory on redis-1"),  # reopens it
        make_event(40, fingerprint="b", title="Redis memory full on redis-2"),    # same family
        make_event(5000, fingerprint="a", title="Redis out of memory on redis-1"),  # a new episode
    ]]
    joined = [d.evidence for d in decisions if isinstance(d.evidence, Joined)]
    assert any(e.promoted for e in joined) and any(e.reopened for e in joined)
    assert any(e.match.family is not None for e in joined)
    resolve = decisions[2].evidence
    assert isinstance(resolve, Resolve) and resolve.incident_resolved and resolve.transient
    assert decisions[2].incident_resolved and decisions[1].opens_incident
    last = decisions[-1].evidence
    assert isinstance(last, Opened) and last.previous_episode is not None
    for decision in decisions:
        assert_round_trips(decision)


CRITERIA = Criteria(threshold=0.55, weights=Weights(text=0.3, topology=0.45, time=0.25, labels=0.0, family=0.0),
                    parameters_version=3, window_s=300.0)


def test_a_join_writes_the_keys_it_always_wrote_in_their_order() -> None:
    joined = Joined(scope="domain:eu", service="checkout", template="Lx", criteria=CRITERIA, candidates=2,
                    previous_episode=PreviousEpisode(incident="inc-0", ended=EpisodeEnd.started_later),
                    match=Candidate(incident="inc-1", score=0.78, components=Components(0.9, 0.8, 0.0, 1.0),
                                    text_match=TextMatch.same_family, gap_s=40.0, gap_from=GapFrom.service,
                                    incident_age_s=100.0, nearest_template="Redis down", hops=0, via="checkout",
                                    family=2, family_match=True),
                    promoted=True, reopened=True)
    document = joined.as_json()
    assert list(document) == [
        "scope", "service", "template", "threshold", "weights", "parameters_version", "candidates", "window_s",
        "previous_episode", "incident", "score", "components", "text_match", "gap_s", "gap_from", "incident_age_s", "nearest_template",
        "hops", "via", "family", "family_match", "promoted", "reopened"]
    assert document["weights"] == {"text": 0.3, "topology": 0.45, "time": 0.25, "labels": 0.0, "family": 0.0}
    assert list(document["components"].items()) == [("text", 0.9), ("time", 0.8), ("labels", 0.0), ("topology", 1.0)]
    assert list(document["weights"]) == ["text", "topology", "time", "labels", "family"]
    assert (document["text_match"], document["gap_from"]) == ("same_family", "service")
    assert document["previous_episode"] == {"incident": "inc-0", "ended": "started_later"}
    plain = dataclasses.replace(joined, promoted=False, reopened=False, previous_episode=None,
                                match=dataclasses.replace(joined.match, hops=None, via=None, family=None))
    assert not {"promoted", "reopened", "hops", "via", "family", "family_match", "previous_episode"} \
        & set(plain.as_json())


def test_corrections_quote_the_decision_they_replace_as_it_was_stored() -> None:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    legacy = {"scope": "service:checkout", "gap_s": 40, "window_s": 300, "unknown": [1]}
    original = Original(rule=rule_of("same_scope_within_window"),
                        evidence=evidence_from_json("same_scope_within_window", legacy))
    merged = Merged(source="inc-b", by="dana", reason="one outage", at=at, original=original).as_json()
    assert merged == {"merged_from": "inc-b", "merged_by": "dana", "reason": "one outage",
                      "merged_at": "2026-03-01T12:00:00+00:00",
                      "original": {"rule": "same_scope_within_window", "evidence": legacy}}
    split = Split(source="inc-a", by="lee", reason="", at=at,
                  original=Original(rule=Rule.merged, evidence=evidence_from_json("merged", merged))).as_json()
    assert list(split) == ["split_from", "split_by", "reason", "split_at", "original"]
    assert split["original"] == {"rule": "merged", "evidence": merged}
    back = evidence_from_json("split", stored_copy(split))
    assert isinstance(back, Split) and back.original is not None and isinstance(back.original.evidence, Merged)
    assert explain("split", back) == ("split by lee from inc-a (before: merged by dana from inc-b: one outage "
                                      "(before: joined because: same service checkout, 40 s after the incident's "
                                      "last event (window 300 s)))")


def stored_copy(document: dict[str, Any]) -> Any:
    return json.loads(json.dumps(document))


def test_rules_and_their_stored_text() -> None:
    assert {r.value for r in Rule} == {"duplicate", "alert_resolved", "correlated", "new_incident", "noise_group",
                                       "merged", "split", "same_scope_within_window"}
    assert rule_of("split") is Rule.split_off and rule_of("a_newer_rule") == "a_newer_rule"
    assert Rule.merged.split("r") == ["me", "ged"]   # a str, its methods included


# Stored decisions of every age, some with keys missing, and what they have always said
# (the sentences ``explain`` gave for these documents before the evidence was typed).
LEGACY: list[tuple[str, dict[str, Any], type, str]] = [
    ("same_scope_within_window", {"scope": "service:checkout", "gap_s": 40.0, "window_s": 300.0,
                                  "incident_age_s": 40.0, "max_incident_age_s": 14400.0}, BaselineJoined,
     "joined because: same service checkout, 40 s after the incident's last event (window 300 s)"),
    ("same_scope_within_window", {}, BaselineJoined,
     "joined because: no service or host (global scope), 0 s after the incident's last event (window 0 s)"),
    ("new_incident", {"scope": "service:checkout"}, Opened, "opened: no open incident accepts this event"),
    ("new_incident", {"scope": "global", "previous_incident": "inc-x", "gap_s": 900.5, "window_s": 300.0},
     BaselineOpened, "opened: no service or host (global scope) had an incident, but its last event was 900 s ago "
                     "(window 300 s) or it was past its maximum age"),
    ("duplicate", {"dedup_key": "k", "reason": "identical text", "first_seen": "2026-01-01T00:00:00+00:00",
                   "seen_before": 3, "since_last_s": 12.5}, Duplicate,
     "duplicate (identical text): seen 3x before, last 12 s earlier"),
    ("duplicate", {}, Duplicate, "duplicate (same signal): seen 1x before, last 0 s earlier"),
    ("alert_resolved", {"dedup_key": "k", "still_firing": 2}, Resolve,
     "resolves an alert of this incident; 2 alert(s) still firing"),
    ("alert_resolved", {"dedup_key": "k", "still_firing": 0, "incident_resolved": True}, Resolve,
     "resolves an alert of this incident; incident resolved"),
    ("alert_resolved", {"dedup_key": "k", "still_firing": 0, "incident_resolved": True, "transient": True}, Resolve,
     "resolves an alert of this incident; incident resolved before its page was due (transient: nobody paged)"),
    ("correlated", {"scope": "service:x", "service": "x", "incident": "inc-1", "score": 0.7,
                    "components": {"text": 0.5, "time": 1, "labels": 0}, "gap_s": 12}, Joined,
     "joined because: x, no known relation, 12 s after the incident's last event, template similarity 0.50 "
     "(score 0.70 ≥ 0.00)"),
    ("correlated", {}, Joined,
     "joined because: no service or host, 0 s after the incident's last event, template similarity 0.00 "
     "(score 0.00 ≥ 0.00)"),
    ("correlated", {"service": "host:node-1", "hops": 2, "via": "host:node-2", "gap_s": 3, "gap_from": "service",
                    "components": {"text": 0.95, "labels": 1.0}, "weights": {"labels": 0.1},
                    "text_match": "same_family", "score": 0.9, "threshold": 0.5, "parameters_version": 4,
                    "family": 7, "family_match": True, "promoted": True, "reopened": True,
                    "previous_episode": {"incident": "inc-0", "ended": "started_later"}}, Joined,
     "joined because: node-1→node-2 2 hops, 3 s after its last event on node-1, same template family 0.95, "
     "same alert family 7, shares a pod/node/instance (score 0.90 ≥ 0.50, parameters v4); its first alert turns "
     "this noise group into an incident; the alert fired again, the incident reopens; a new episode of an alert "
     "of inc-0: it started after that episode was last heard of"),
    ("correlated", {"service": "checkout", "hops": 0, "gap_from": "before_open", "gap_s": 7.4,
                    "text_match": "same_template", "previous_episode": {"ended": "resolve_timeout"}}, Joined,
     "joined because: same service checkout, 7 s before the incident opened, same template (score 0.00 ≥ 0.00); "
     "a new episode of an alert of None: that episode had been silent past resolve_timeout"),
    ("correlated", {"service": "cart", "gap_from": "template", "gap_s": 1, "text_match": "weird"}, Joined,
     "joined because: cart, no known relation, 1 s after it last showed this template there, "
     "template similarity 0.00 (score 0.00 ≥ 0.00)"),
    ("new_incident", {"best_candidate": {"incident": "inc-2", "score": 0.3}, "threshold": 0.55}, Opened,
     "opened: the best candidate inc-2 scored 0.30 < 0.55"),
    ("new_incident", {"best_candidate": {"incident": "inc-2", "blocked": "settled"}}, Opened,
     "opened: the nearest incident inc-2 is past its propagation window and has not shown this service and "
     "template"),
    ("noise_group", {"best_candidate": {"blocked": "no_topology"}, "previous_episode": {"incident": "i"}}, Opened,
     "opened a noise group (pages nobody): the nearest incident None is on services with no known relation; "
     "a new episode of an alert of i: that episode had been silent past resolve_timeout"),
    ("noise_group", {}, Opened, "opened a noise group (pages nobody): no open incident accepts this event"),
    ("merged", {"merged_from": "inc-3", "reason": ""}, Merged, "merged by a responder from inc-3"),
    ("merged", {"merged_from": "inc-3", "merged_by": "dana", "reason": "one outage",
                "merged_at": "2026-01-01T00:00:00+00:00",
                "original": {"rule": "new_incident", "evidence": {"best_candidate": {"incident": "a", "score": 0.1}}}},
     Merged, "merged by dana from inc-3: one outage (before: opened: the best candidate a scored 0.10 < 0.00)"),
    ("split", {"split_from": "inc-4", "split_by": "x", "original": {"rule": "same_scope_within_window",
                                                               "evidence": {"scope": "a:b", "gap_s": 1}}}, Split,
     "split by x from inc-4 (before: joined because: same a b, 1 s after the incident's last event (window 0 s))"),
    ("split", {"split_from": "inc-4", "split_by": "lee", "reason": "no",
               "original": {"rule": "merged", "evidence": {"merged_from": "m", "merged_by": "d",
                                                           "original": {"rule": "future_rule"}}}}, Split,
     "split by lee from inc-4: no (before: merged by d from m (before: future_rule))"),
    ("split", {"original": {}}, Split, "split by a responder from None"),
    ("some_future_rule", {"x": 1}, Unrecognized, "some_future_rule"),
    ("", {}, Unrecognized, ""),
]


@pytest.mark.parametrize(("rule", "document", "kind", "sentence"), LEGACY)
def test_stored_decisions_of_every_age_read_back_and_explain_as_they_did(
        rule: str, document: dict[str, Any], kind: type, sentence: str) -> None:
    evidence = evidence_from_json(rule, stored_copy(document))
    assert type(evidence) is kind
    assert explain(rule_of(rule), evidence) == sentence
    assert evidence.as_json() == document      # what the API shows: the row as stored


def test_a_settled_candidate_reads_back_typed() -> None:
    evidence = evidence_from_json("new_incident", {"best_candidate": {"incident": "i", "blocked": "settled",
                                                                      "gap_from": "template", "hops": 1}})
    assert isinstance(evidence, Opened) and evidence.best_candidate is not None
    best = evidence.best_candidate
    assert (best.blocked, best.gap_from, best.hops, best.text_match) == (Blocked.settled, GapFrom.template, 1,
                                                                         TextMatch.similar)
