"""The figures an operations review asks for, from what triage already knows.

Over the incidents opened in a window (noise groups, which page nobody, and incidents
merged into another, whose events and pages moved there, left out), from their first
event, their first firing alert, their pages (the decisions that made a page or page
update due, in event time) and what came back about them (``feedback``: PagerDuty v3
webhooks, triage's feedback API); see ``triage.store.oncall``:

* **MTTD**, mean time to detect: from an incident's first event (of any kind: the first
  sign triage saw) to its first page. Lacking: incidents never paged (held or transient).
* **MTTA**, mean time to acknowledge: from the first page to the first acknowledgement by a
  person (PagerDuty's ``incident.acknowledged`` with a user as agent), else a person's
  resolve. Lacking: paged incidents nobody acknowledged.
* **MTTR**, mean time to resolve: from the first page to the first resolve (PagerDuty's
  ``incident.resolved``, by anyone, or ``POST /incidents/{id}/resolution``). Lacking: paged
  incidents with no resolve recorded. MTTA and MTTR run from the page, as PagerDuty
  measures them; MTTD + MTTR is from the first sign to the resolve.
* **Alert precision**: the share of pages whose incident a person acted on (acknowledged,
  resolved, merged or split). Lacking: paged incidents nothing at all came back about
  (counted as not acted on: without webhooks configured, precision cannot be told).
* **Pages per on-call person per week**: each page counts for the person its incident was
  paged to (PagerDuty's assignee), else the first to acknowledge or resolve it, in the week
  (UTC, from Monday) the page fell due.
* **Noisy alert rules**: per alert rule (``alertname``, else the alert's title) of the alert
  that made a page due, its pages and how many nobody acted on, and the incidents
  ``auto_pause`` held back as transient (counted by their first alert's rule).
* **Recurring causes**: the alert families (``GET /families``, the newest fit) of the
  incidents' first alerts that opened two or more incidents in the window.

``by``: the figures per service (an incident's is its first firing alert's service) or per
team, through a ``TeamOf`` mapping from service to team (a service catalog's owners).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

import sqlalchemy as sa

from triage.correlation.templating import alert_template_id
from triage.services.quality import week_of
from triage.store.family_fits import FamilyStore
from triage.store.oncall import IncidentFacts, incident_facts

__all__ = ["Cause", "Figure", "Group", "GroupBy", "NoTeams", "NoisyRule", "OncallFigures", "OncallReport",
           "PersonWeek", "TeamOf", "oncall_figures", "oncall_report"]

# A service's team, or None for a service no team owns: the seam a service catalog fills.
TeamOf = Callable[[str], str | None]
NO_SERVICE = "(none)"
NO_TEAM = "(no team)"
TOP = 10


class GroupBy(str, Enum):
    service = "service"
    team = "team"


class NoTeams(LookupError):
    """``by=team`` without a mapping from service to team."""


@dataclass(frozen=True)
class Figure:
    value: float | None          # None: no incident had the data
    incidents: int               # incidents it was computed from
    lacking: int                 # incidents in scope that lacked the data
    source: str                  # which events it was computed from


@dataclass(frozen=True)
class OncallFigures:
    incidents: int               # opened in the window
    paged: int                   # of which paged
    pages: int                   # decisions that made a page or page update due
    transient: int               # held back by auto_pause: resolved before their page was due
    held: int                    # first page still held by auto_pause
    mttd_s: Figure
    mtta_s: Figure
    mttr_s: Figure
    alert_precision: Figure


@dataclass(frozen=True)
class Group:
    key: str
    figures: OncallFigures


@dataclass(frozen=True)
class PersonWeek:
    week: date
    person: str | None           # None: nobody known (no PagerDuty assignee, nobody answered)
    pages: int
    incidents: int


@dataclass(frozen=True)
class NoisyRule:
    rule: str
    pages: int
    not_acted_on: int
    incidents: int               # paged incidents whose pages it made due
    transient: int               # incidents it opened that auto_pause held back


@dataclass(frozen=True)
class Cause:
    family: int
    example: str                 # an alert title of the family, from one of the incidents
    incidents: int
    pages: int
    acted_on: int                # of those incidents


@dataclass(frozen=True)
class OncallReport:
    since: datetime | None
    until: datetime | None
    by: GroupBy
    total: OncallFigures
    groups: list[Group]          # most pages first
    per_person: list[PersonWeek]  # by week, most pages first
    persons_lacking: int         # paged incidents with nobody known to have been paged
    noisy_rules: list[NoisyRule]  # at most 10, most pages nobody acted on first
    causes: list[Cause]          # at most 10, most incidents first
    families_version: int | None  # the alert families fit the causes come from; None: never fitted


_MTTD = "first event of the incident (any kind) -> first decision that made a page due"
_MTTA = ("first page -> first acknowledgement by a person (PagerDuty incident.acknowledged), else a person's "
         "resolve")
_MTTR = ("first page -> first resolve (PagerDuty incident.resolved, or POST /incidents/{id}/resolution)")
_PRECISION = ("pages of incidents a person acknowledged, resolved, merged or split / all pages (decisions that "
              "made a page due); lacking: paged incidents nothing came back about")


def _mean_gap(pairs: Iterable[tuple[datetime, datetime | None]]) -> tuple[float | None, int, int]:
    gaps, lacking = [], 0
    for start, end in pairs:
        if end is None:
            lacking += 1
        else:
            gaps.append(max(0.0, (end - start).total_seconds()))   # clocks of two systems may disagree
    return (sum(gaps) / len(gaps) if gaps else None), len(gaps), lacking


def oncall_figures(facts: Sequence[IncidentFacts]) -> OncallFigures:
    paged = [f for f in facts if f.pages]
    pages = sum(len(f.pages) for f in paged)
    never = len(facts) - len(paged)
    detected = _mean_gap((f.opened_at, f.first_page) for f in paged)
    acked = _mean_gap((f.first_page, f.acknowledged_at) for f in paged if f.first_page)
    resolved = _mean_gap((f.first_page, f.resolved_at) for f in paged if f.first_page)
    acted = sum(len(f.pages) for f in paged if f.acted_on)
    return OncallFigures(
        incidents=len(facts), paged=len(paged), pages=pages, transient=sum(f.transient for f in facts),
        held=sum(f.held for f in facts),
        mttd_s=Figure(detected[0], detected[1], never, _MTTD),
        mtta_s=Figure(acked[0], acked[1], acked[2], _MTTA),
        mttr_s=Figure(resolved[0], resolved[1], resolved[2], _MTTR),
        alert_precision=Figure(acted / pages if pages else None, len(paged),
                               sum(not f.any_feedback for f in paged), _PRECISION))


def _per_person(facts: Sequence[IncidentFacts]) -> list[PersonWeek]:
    pages: Counter[tuple[date, str | None]] = Counter()
    incidents: dict[tuple[date, str | None], set[str]] = defaultdict(set)
    for f in facts:
        for page in f.pages:
            key = (week_of(page.at), f.person)
            pages[key] += 1
            incidents[key].add(f.id)
    return [PersonWeek(week, person, n, len(incidents[(week, person)]))
            for (week, person), n in sorted(pages.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1] or "\uffff"))]


def _noisy_rules(facts: Sequence[IncidentFacts]) -> list[NoisyRule]:
    pages: Counter[str] = Counter()
    ignored: Counter[str] = Counter()
    incidents: dict[str, set[str]] = defaultdict(set)
    transient: Counter[str] = Counter()
    for f in facts:
        for page in f.pages:
            pages[page.rule] += 1
            ignored[page.rule] += not f.acted_on
            incidents[page.rule].add(f.id)
        if f.transient and f.rule:
            transient[f.rule] += 1
    rules = set(pages) | set(transient)
    ranked = sorted(rules, key=lambda r: (-ignored[r], -pages[r], -transient[r], r))
    return [NoisyRule(r, pages[r], ignored[r], len(incidents[r]), transient[r]) for r in ranked[:TOP]]


def _causes(engine: sa.Engine, facts: Sequence[IncidentFacts]) -> tuple[list[Cause], int | None]:
    store = FamilyStore(engine)
    version = store.latest_version()
    families = store.document(version) if version is not None else None
    if families is None:
        return [], None
    by_id = {alert_template_id(text): family for text, family in families.members.items()}
    held: dict[int, list[IncidentFacts]] = defaultdict(list)
    for f in facts:
        family = by_id.get(f.alert_template) if f.alert_template else None
        if family is not None:
            held[family].append(f)
    causes = [Cause(family, example=next((f.rule for f in fs if f.rule), ""), incidents=len(fs),
                    pages=sum(len(f.pages) for f in fs), acted_on=sum(f.acted_on for f in fs))
              for family, fs in held.items() if len(fs) >= 2]
    causes.sort(key=lambda c: (-c.incidents, -c.pages, c.family))
    return causes[:TOP], version


def oncall_report(engine: sa.Engine, since: datetime | None = None, until: datetime | None = None, *,
                  by: GroupBy = GroupBy.service, team_of: TeamOf | None = None) -> OncallReport:
    """The on-call figures of the incidents opened in [since, until), in total and per
    service or team. ``by=team`` without ``team_of`` raises ``NoTeams``."""
    if by is GroupBy.team and team_of is None:
        raise NoTeams("no team is known for any service: by=team needs a service catalog that names each "
                      "service's team; use by=service")
    facts = incident_facts(engine, since, until)
    grouped: dict[str, list[IncidentFacts]] = defaultdict(list)
    for f in facts:
        service = f.service or NO_SERVICE
        key = service if by is GroupBy.service else ((team_of(service) if team_of else None) or NO_TEAM)
        grouped[key].append(f)
    groups = [Group(key, oncall_figures(fs)) for key, fs in grouped.items()]
    groups.sort(key=lambda g: (-g.figures.pages, -g.figures.incidents, g.key))
    causes, version = _causes(engine, facts)
    return OncallReport(since=since, until=until, by=by, total=oncall_figures(facts), groups=groups,
                        per_person=_per_person(facts),
                        persons_lacking=sum(1 for f in facts if f.pages and f.person is None),
                        noisy_rules=_noisy_rules(facts), causes=causes, families_version=version)
