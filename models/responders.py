"""Who should respond, and which team: from the catalog on day one, from feedback after.

``ResponderModel.suggest`` answers for an incident whose probable-cause component is
known (``models.probable_cause``):

* **team**: the team owning that component in the catalog (a host or the cluster belongs
  to the platform entry); without a catalog entry, the team that resolved most of the
  similar past incidents.
* **people**, each with the evidence behind them:
  - *rotation*: who has been resolving this team's incidents lately. Rotations are
    weekly and the schedule is rarely exported, so each past resolution counts with a
    weight halving every ``half_life_s`` (3.5 days: last week's on-call fades as this
    week's takes over). A rotation has a primary and a secondary: each person counts by
    the square root of their share (``rotation_exponent``), so the secondary, who
    resolves few, still comes before people of other teams;
  - *similar*: who resolved the similar past incidents (the same problem, fixed by the
    same hands), each weighed by how alike it is and shared among at least three, so
    that one weak match of a short history does not outweigh the catalog;
  - *lately*: who has been resolving any incident lately (a neighbouring team's on-call
    often fixes what reached them first);
  - *catalog*: the component's owners, then the team's members: what triage knows on day
    one, and a tie-break after.

Scores add up; the confidence of a person is their share of the scores, shrunk by
``(n + 1) / (n + 2)`` for a team with ``n`` resolutions heard (day one: half), so it
reads as the chance they are the one; the evaluation reports the mean confidence of the
first suggestion next to how often it was right (``person_confidence_at_1``). Pure: the time of
the question is passed in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from triage.models.catalog import Catalog

__all__ = ["PastResolution", "ResponderModel", "ResponderParameters", "ResponderSuggestion", "SuggestedPerson"]


@dataclass(frozen=True)
class PastResolution:
    """An incident triage learned the outcome of: whose team resolved it (the responder's
    team in the catalog, else the owner of its probable cause), who resolved it, when,
    and the team owning its probable cause when that is another team (``owner_team``:
    the incident was brought to someone outside the team that owns it)."""

    incident_id: str
    team: str | None
    responder: str
    resolved_at: datetime
    owner_team: str | None = None


@dataclass(frozen=True)
class ResponderParameters:
    half_life_s: float = 3.5 * 86400.0
    w_rotation: float = 1.0
    rotation_exponent: float = 0.5   # of each person's share of the team's resolutions (see suggest)
    w_outside: float = 0.5           # a resolution of the team's incident by someone of another team
    w_similar: float = 0.6
    w_anyone: float = 0.15            # who has been resolving anything lately (neighbouring teams' on-call)
    strong_similarity: float = 2.0   # a similar incident's score that counts fully
    w_owner: float = 0.25
    w_member: float = 0.05
    fade_after: float = 3.0          # the catalog's weight halves once the team has this many resolutions
    top: int = 3


@dataclass(frozen=True)
class SuggestedPerson:
    person: str
    confidence: float
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class ResponderSuggestion:
    team: str | None
    team_evidence: str | None
    people: tuple[SuggestedPerson, ...]


class ResponderModel:
    def __init__(self, parameters: ResponderParameters | None = None) -> None:
        self.parameters = parameters or ResponderParameters()
        self._past: dict[str, PastResolution] = {}

    def learn_one(self, resolution: PastResolution) -> None:
        self._past[resolution.incident_id] = resolution   # a second word on it replaces the first

    def __len__(self) -> int:
        return len(self._past)

    def suggest(self, *, now: datetime, catalog: Catalog, component: str | None,
                similar: Sequence[tuple[str, float]] = ()) -> ResponderSuggestion:
        """``component``: the catalog entry answering for the probable cause (None when
        unknown); ``similar``: (past incident id, similarity) of the similar incidents."""
        p = self.parameters
        entry = catalog.service(component)
        team = entry.team if entry is not None else None
        team_evidence = f"owns {entry.name} in the catalog" if entry is not None and team else None
        if team is None:
            votes: dict[str, float] = defaultdict(float)
            for incident_id, sim in similar:
                past = self._past.get(incident_id)
                if past is not None and past.team:
                    votes[past.team] += sim
            if votes:
                team = max(sorted(votes), key=lambda t: votes[t])
                team_evidence = "resolved most of the similar past incidents"
        scores: dict[str, float] = defaultdict(float)
        evidence: dict[str, list[str]] = defaultdict(list)
        if team is not None:
            # The team's rotation: who resolved the team's incidents lately, its own people
            # and, at ``w_outside`` a resolution, people of other teams who resolved an
            # incident the team owns (an escalation that recurs: a platform engineer who
            # takes checkout's crashes). Counted fully, one such resolution, the latest,
            # put its outsider ahead of the team's own primary.
            recent = sorted((r for r in self._past.values()
                             if (r.team == team or r.owner_team == team) and r.resolved_at <= now),
                            key=lambda r: r.resolved_at, reverse=True)
            weights: dict[str, float] = defaultdict(float)
            counts: dict[str, int] = defaultdict(int)
            outside: dict[str, str | None] = {r.responder: r.team for r in recent if r.team != team}
            for r in recent:
                weights[r.responder] += (1.0 if r.team == team else p.w_outside) * \
                    0.5 ** ((now - r.resolved_at).total_seconds() / p.half_life_s)
                counts[r.responder] += 1
            # square roots of the shares: a rotation has a primary who resolves most of
            # the team's incidents and a secondary who resolves the rest, and the
            # secondary, however few their resolutions, is the next likeliest person
            # (ahead of people of other teams who resolved similar incidents)
            total = sum(w ** p.rotation_exponent for w in weights.values())
            last5 = [r.responder for r in recent[:5]]
            for person, w in weights.items():
                scores[person] += p.w_rotation * w ** p.rotation_exponent / total
                share, n = last5.count(person), counts[person]
                of = f" (of team {outside[person]})" if person in outside and outside[person] else ""
                evidence[person].append(f"resolved {share} of the last {len(last5)} incidents of team {team}{of}" if share
                                        else f"resolved {n} incident{'s' if n > 1 else ''} of team {team} before{of}")
        lately: dict[str, float] = defaultdict(float)
        for r in self._past.values():
            if r.resolved_at <= now:
                lately[r.responder] += 0.5 ** ((now - r.resolved_at).total_seconds() / p.half_life_s)
        total_lately = sum(lately.values())
        for person, w in lately.items():
            scores[person] += p.w_anyone * w / total_lately
            if not evidence[person]:
                evidence[person].append("has been resolving incidents lately")
        sims = [(self._past[i], s) for i, s in similar if i in self._past]
        if sims:
            by_person: dict[str, list[str]] = defaultdict(list)
            for past, s in sims:
                # a strong match (the same cause, read alike) counts fully, a weak one little;
                # a lone match of a short history counts as one of three, not as all of them
                scores[past.responder] += p.w_similar * min(1.0, s / p.strong_similarity) / max(len(sims), 3)
                by_person[past.responder].append(past.incident_id)
            for person, ids in by_person.items():
                evidence[person].append(f"resolved similar incident{'s' if len(ids) > 1 else ''} {', '.join(ids[:3])}")
        # The catalog is what triage knows on day one; it fades as the team's own
        # history grows.
        history = sum(1 for r in self._past.values() if r.team == team and r.resolved_at <= now)
        fade = 1.0 / (1.0 + history / p.fade_after)
        if entry is not None:
            for rank, owner in enumerate(entry.owners):
                scores[owner] += fade * p.w_owner / (1 + rank)
                evidence[owner].append(f"owner of {entry.name}")
        members = catalog.teams[team].members if team is not None and team in catalog.teams else ()
        for rank, member in enumerate(members):
            scores[member] += fade * p.w_member / (1 + rank)
            if not evidence[member]:
                evidence[member].append(f"member of team {team}")
        total = sum(scores.values())
        # Shares of the score, shrunk by how little the team's history says yet: on day
        # one (no resolution heard) half the share, nearly all of it after a few weeks.
        certainty = (history + 1) / (history + 2)
        ranked = sorted(scores, key=lambda person: (-scores[person], person))[:p.top]
        people = tuple(SuggestedPerson(person, round(certainty * scores[person] / total, 3), tuple(evidence[person]))
                       for person in ranked if total > 0)
        return ResponderSuggestion(team, team_evidence, people)

