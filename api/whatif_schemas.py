"""Request and response bodies of the what-if (``POST /models/parameters/preview``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from triage.api.params import Time
from triage.api.review_schemas import ScoresPublic
from triage.services.whatif import DEFAULT_TRANSIENT_S, Regrouped, Run, WhatIf


class PreviewIn(BaseModel):
    values: dict[str, Any] = Field(description="candidate parameter values; the others keep their value in force")
    since: Time = Field(description="replay the events that occurred at or after")
    until: Time = Field(description="and before this (at most 31 days after since)")
    transient_s: float = Field(DEFAULT_TRANSIENT_S, ge=0, le=86400,
                               description="an alert that resolved within this many seconds of firing is transient; "
                                           "a page of a group holding only transient alerts is a noise page")


class RunPublic(BaseModel):
    pages: int = Field(description="pages the page target would have received (first pages, and the first after "
                                   "a resolve; not the updates of an open page), auto_pause's held pages "
                                   "included")
    pages_due: int = Field(description="decisions that made a page or a page update due, as /stats/noise counts "
                                       "pages")
    noise_pages: int = Field(description="pages of groups whose firing alerts all resolved within transient_s")
    incidents: int = Field(description="groups holding a firing alert: they page")
    noise_groups: int = Field(description="groups of logs and spans no alert joined: they page nobody")
    transient_incidents: int = Field(description="incidents auto_pause kept from paging (all alerts resolved "
                                                 "inside the pause)")
    compression: float = Field(description="1 - incidents / events")
    feedback: ScoresPublic | None = Field(description="this grouping against the responders' (merges and splits "
                                                      "of incidents in the window); null when there are none")

    @classmethod
    def of(cls, run: Run) -> "RunPublic":
        return cls(pages=run.pages, pages_due=run.pages_due, noise_pages=run.noise_pages, incidents=run.incidents,
                   noise_groups=run.noise_groups, transient_incidents=run.transient_incidents,
                   compression=run.compression, feedback=ScoresPublic.of(run.feedback) if run.feedback else None)


class RegroupedPublic(BaseModel):
    current: list[str] = Field(description="the incidents these events form with the values in force, as the "
                                           "replay opened them (ids derive from the opening event, as stored ones do)")
    candidate: list[str] = Field(description="the incidents they form with the candidate values")
    stored: list[str] = Field(description="the stored incidents holding these events now")
    events: int

    @classmethod
    def of(cls, r: Regrouped) -> "RegroupedPublic":
        return cls(current=list(r.current), candidate=list(r.candidate), stored=list(r.stored), events=r.events)


class ChangePublic(BaseModel):
    current: Any
    candidate: Any


class PreviewPublic(BaseModel):
    since: datetime
    until: datetime
    events: int = Field(description="stored events replayed: every event that occurred in the window")
    parameters_version: int = Field(description="the version in force, replayed as 'current'")
    changes: dict[str, ChangePublic] = Field(description="the parameters whose candidate value differs")
    current: RunPublic = Field(description="a replay with the values in force")
    candidate: RunPublic = Field(description="a replay with the candidate values")
    merges: list[RegroupedPublic] = Field(description="groups that would merge: several incidents in force, one "
                                                      "candidate incident (most events first, at most 200)")
    merges_total: int
    splits: list[RegroupedPublic] = Field(description="groups that would split: one incident in force spread over "
                                                      "several candidate incidents (most events first, at most 200)")
    splits_total: int
    feedback_events: int = Field(description="events of incidents responders merged or split: what 'feedback' "
                                             "scores are computed over")
    transient_s: float
    embedded: int = Field(description="template texts the sentence model had to embed (the rest were cached)")
    seconds: float = Field(description="how long the replays took")
    setup_seconds: float = Field(description="how long loading the sentence model's libraries and the cached "
                                             "template embeddings took before")

    @classmethod
    def of(cls, w: WhatIf, version: int) -> "PreviewPublic":
        now, then = w.current.parameters.model_dump(mode="json"), w.candidate.parameters.model_dump(mode="json")
        return cls(since=w.since, until=w.until, events=w.events, parameters_version=version,
                   changes={k: ChangePublic(current=now[k], candidate=then[k]) for k in now if now[k] != then[k]},
                   current=RunPublic.of(w.current), candidate=RunPublic.of(w.candidate),
                   merges=[RegroupedPublic.of(r) for r in w.merges], merges_total=w.merges_total,
                   splits=[RegroupedPublic.of(r) for r in w.splits], splits_total=w.splits_total,
                   feedback_events=w.feedback_events, transient_s=w.transient_s, embedded=w.embedded,
                   seconds=round(w.seconds, 3), setup_seconds=round(w.setup_seconds, 3))
