"""Response bodies of the figures an operations review reads: grouping quality from
responders' corrections (``/stats/quality``), on-call figures (``/stats/oncall``)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from triage.services.oncall import Figure, GroupBy, OncallFigures, OncallReport
from triage.services.quality import GroupingQuality, Scores


class PairsPublic(BaseModel):
    together_in_both: int = Field(description="pairs of events triage put together and responders kept together")
    responders: int = Field(description="pairs of events sharing an incident now (the responders' grouping)")
    triage: int = Field(description="pairs of events triage had put in one incident")


class ScoresPublic(BaseModel):
    events: int
    incidents: int = Field(description="incidents these events form now, after the responders' corrections")
    triage_groups: int = Field(description="incidents triage had put them in")
    pairs: PairsPublic
    precision: float = Field(description="pairwise: together_in_both / triage (1 when triage put no pair together)")
    recall: float = Field(description="pairwise: together_in_both / responders (1 when responders hold no pair)")
    f1: float
    bcubed_precision: float = Field(description="per event, the share of its triage incident that responders "
                                                "kept with it, averaged over events")
    bcubed_recall: float = Field(description="per event, the share of its incident now that triage had put with "
                                             "it, averaged over events")
    bcubed_f1: float

    @classmethod
    def of(cls, s: Scores) -> "ScoresPublic":
        return cls(events=s.events, incidents=s.incidents, triage_groups=s.triage_groups,
                   pairs=PairsPublic(together_in_both=s.pairs.both, responders=s.pairs.truth, triage=s.pairs.pred),
                   precision=s.precision, recall=s.recall, f1=s.f1, bcubed_precision=s.bcubed_precision,
                   bcubed_recall=s.bcubed_recall, bcubed_f1=s.bcubed_f1)


class VersionQualityPublic(ScoresPublic):
    parameters_version: int = Field(description="the parameters version these events were decided under")


class WeekQualityPublic(BaseModel):
    week: date = Field(description="the week's Monday (UTC); an event counts in the week its group began")
    total: ScoresPublic = Field(description="all of the week's events, pairs across versions included")
    versions: list[VersionQualityPublic] = Field(description="per parameters version, oldest first")


class QualityPublic(BaseModel):
    since: datetime | None
    until: datetime | None
    merges: int = Field(description="merges that moved an event of the window")
    splits: int = Field(description="splits that moved an event of the window")
    incomplete: int = Field(description="merges recorded without the events they moved (before triage recorded "
                                        "them); the incidents they touched are left out")
    total: ScoresPublic | None = Field(description="null: no event of the window is in an incident a merge or "
                                                   "split touched")
    weeks: list[WeekQualityPublic]

    @classmethod
    def of(cls, q: GroupingQuality) -> "QualityPublic":
        return cls(since=q.since, until=q.until, merges=q.merges, splits=q.splits, incomplete=q.incomplete,
                   total=ScoresPublic.of(q.total) if q.total else None,
                   weeks=[WeekQualityPublic(
                       week=w.week, total=ScoresPublic.of(w.scores),
                       versions=[VersionQualityPublic(parameters_version=v.parameters_version,
                                                      **ScoresPublic.of(v.scores).model_dump())
                                 for v in w.versions]) for w in q.weeks])


class FigurePublic(BaseModel):
    value: float | None = Field(description="seconds, or a share for alert_precision; null when no incident had "
                                            "the data")
    incidents: int = Field(description="incidents it was computed from")
    lacking: int = Field(description="incidents in scope that lacked the data")
    source: str = Field(description="which events it was computed from")

    @classmethod
    def of(cls, f: Figure) -> "FigurePublic":
        return cls(value=f.value, incidents=f.incidents, lacking=f.lacking, source=f.source)


class OncallFiguresPublic(BaseModel):
    incidents: int = Field(description="incidents opened in the window (noise groups and incidents merged into "
                                       "another left out)")
    paged: int = Field(description="of which paged")
    pages: int = Field(description="decisions that made a page or page update due")
    transient: int = Field(description="held back by auto_pause: all alerts resolved before the page was due")
    held: int = Field(description="first page still held by auto_pause")
    mttd_s: FigurePublic = Field(description="mean time to detect: first event to first page")
    mtta_s: FigurePublic = Field(description="mean time to acknowledge: first page to a person's acknowledgement")
    mttr_s: FigurePublic = Field(description="mean time to resolve: first page to the resolve")
    alert_precision: FigurePublic = Field(description="the share of pages someone acted on")

    @classmethod
    def of(cls, f: OncallFigures) -> "OncallFiguresPublic":
        return cls(incidents=f.incidents, paged=f.paged, pages=f.pages, transient=f.transient, held=f.held,
                   mttd_s=FigurePublic.of(f.mttd_s), mtta_s=FigurePublic.of(f.mtta_s),
                   mttr_s=FigurePublic.of(f.mttr_s), alert_precision=FigurePublic.of(f.alert_precision))


class OncallGroupPublic(BaseModel):
    key: str = Field(description="the service (of the incident's first firing alert) or the team")
    figures: OncallFiguresPublic


class PersonWeekPublic(BaseModel):
    week: date = Field(description="the week's Monday (UTC), of the page's time")
    person: str | None = Field(description="whom PagerDuty paged, else who acknowledged or resolved; null: unknown")
    pages: int
    incidents: int


class NoisyRulePublic(BaseModel):
    rule: str = Field(description="the alertname label of the alert that made pages due, else its title")
    pages: int
    not_acted_on: int = Field(description="pages of incidents nobody acknowledged, resolved, merged or split")
    incidents: int
    transient: int = Field(description="incidents it opened that auto_pause held back (resolved in the pause)")


class CausePublic(BaseModel):
    family: int = Field(description="the alert family (GET /families/{id}) of the incidents' first alerts")
    example: str
    incidents: int
    pages: int
    acted_on: int


class OncallPublic(BaseModel):
    since: datetime | None
    until: datetime | None
    by: GroupBy
    total: OncallFiguresPublic
    groups: list[OncallGroupPublic] = Field(description="per service or team, most pages first")
    pages_per_person: list[PersonWeekPublic] = Field(description="per week, then most pages first")
    persons_lacking: int = Field(description="paged incidents with nobody known to have been paged")
    noisy_rules: list[NoisyRulePublic] = Field(description="at most 10: most pages nobody acted on first")
    recurring_causes: list[CausePublic] = Field(description="alert families that opened two or more incidents, "
                                                            "at most 10")
    families_version: int | None = Field(description="the alert families fit used; null: never fitted")

    @classmethod
    def of(cls, r: OncallReport) -> "OncallPublic":
        return cls(since=r.since, until=r.until, by=r.by, total=OncallFiguresPublic.of(r.total),
                   groups=[OncallGroupPublic(key=g.key, figures=OncallFiguresPublic.of(g.figures)) for g in r.groups],
                   pages_per_person=[PersonWeekPublic(week=p.week, person=p.person, pages=p.pages,
                                                      incidents=p.incidents) for p in r.per_person],
                   persons_lacking=r.persons_lacking,
                   noisy_rules=[NoisyRulePublic(rule=n.rule, pages=n.pages, not_acted_on=n.not_acted_on,
                                                incidents=n.incidents, transient=n.transient) for n in r.noisy_rules],
                   recurring_causes=[CausePublic(family=c.family, example=c.example, incidents=c.incidents,
                                                 pages=c.pages, acted_on=c.acted_on) for c in r.causes],
                   families_version=r.families_version)
