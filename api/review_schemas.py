"""Response bodies of the figures an operations review reads: grouping quality from
responders' corrections (``/stats/quality``), on-call figures (``/stats/oncall``)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

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
