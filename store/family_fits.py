"""Alert families in the store: the fitted families, their statistics, and what a fit reads.

A fit (``triage.services.families_job``) reads how alert templates were used (``template_usage``: one
aggregate over the ``memberships.template_id`` index), their texts and embeddings, and
writes one new *version*: the ``TemplateFamilies`` document (``template_families``) and
one row of statistics per family (``template_family_stats``), in one transaction.
Readers (``GET /families``, the consumers' correlators) take the newest version; the
last few are kept, older ones deleted. Several replicas may fit: versions are numbered
under a table lock, so the last writer wins and nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from triage.correlation.templating import alert_template_id
from triage.models.alert_families import TemplateFamilies
from triage.store import schema as t
from triage.store.schema import JSONType, UTCDateTime, metadata
from triage.store.engine import chunks

KEEP_VERSIONS = 3

template_families = sa.Table(
    "template_families", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("fitted_at", UTCDateTime(), nullable=False),
    sa.Column("fitted_by", sa.String(200), nullable=False),
    sa.Column("templates", sa.Integer, nullable=False),   # texts the fit clustered
    sa.Column("next_id", sa.Integer, nullable=False),     # the smallest family id never used
    sa.Column("document", JSONType, nullable=False),      # TemplateFamilies.to_json()
)

template_family_stats = sa.Table(
    "template_family_stats", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("family", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.Integer, nullable=False),        # templates in the family
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("incidents", sa.Integer, nullable=False),
    sa.Column("pages", sa.Integer, nullable=False),
    sa.Column("last_seen", UTCDateTime()),
    sa.Column("templates", JSONType, nullable=False),     # [[text, events], ...], most events first
)


@dataclass
class TemplateUse:
    """How one template was used: the decisions that named it, the pages among them, the
    incidents they are in, the last one's time (the membership's ``decided_at``)."""

    template_id: str
    events: int = 0
    pages: int = 0
    last_seen: datetime | None = None
    incidents: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class FamilyStats:
    family: int
    size: int
    events: int
    incidents: int
    pages: int
    last_seen: datetime | None
    templates: list[tuple[str, int]]   # (text, events), most events first


@dataclass(frozen=True)
class FamilyFit:
    version: int
    fitted_at: datetime
    fitted_by: str
    templates: int
    families: int
    next_id: int


def template_usage(conn: sa.Connection, kind: str = "A") -> dict[str, TemplateUse]:
    """How each template of one kind (the id's first letter: ``A`` alerts, ``L`` logs,
    ``S`` spans) was used. One GROUP BY (template, incident), an index-only scan of
    ``ix_memberships_template`` on both databases, streamed and folded per template: about
    4 s for 3 million memberships of which 600,000 name an alert template, on the 2-core
    machine; it runs in a periodic job, never per event."""
    m = t.memberships
    stmt = (sa.select(m.c.template_id, m.c.incident_id, sa.func.count().label("events"),
                      sa.func.sum(sa.case((m.c.notify, 1), else_=0)).label("pages"),
                      sa.func.max(m.c.decided_at).label("last_seen"))
            .where(m.c.template_id >= kind, m.c.template_id < chr(ord(kind) + 1))
            .group_by(m.c.template_id, m.c.incident_id))
    usage: dict[str, TemplateUse] = {}
    for r in conn.execution_options(stream_results=True, yield_per=10_000).execute(stmt):
        use = usage.get(r.template_id)
        if use is None:
            use = usage[r.template_id] = TemplateUse(r.template_id)
        use.events += int(r.events)
        use.pages += int(r.pages or 0)
        use.incidents.add(r.incident_id)
        if r.last_seen is not None and (use.last_seen is None or r.last_seen > use.last_seen):
            use.last_seen = r.last_seen
    return usage


def alert_template_texts(conn: sa.Connection, usage: Mapping[str, TemplateUse], model: str) -> dict[str, str]:
    """The text of each alert template id in ``usage``. An alert template's id is a digest
    of its text and every text is stored once with its embedding, so the texts of
    ``template_embeddings`` name them all; an id found nowhere there (embedded under
    another model) is looked up in the profile of an incident that holds it."""
    texts: dict[str, str] = {}
    e = t.template_embeddings
    for (text,) in conn.execute(sa.select(e.c.text).where(e.c.model == model)):
        tid = alert_template_id(text)
        if tid in usage:
            texts[tid] = text
    missing = {tid: min(u.incidents) for tid, u in usage.items() if tid not in texts and u.incidents}
    by_incident: dict[str, list[str]] = {}
    for tid, incident in missing.items():
        by_incident.setdefault(incident, []).append(tid)
    for chunk in chunks(sorted(by_incident)):
        for row in conn.execute(sa.select(t.incidents.c.id, t.incidents.c.profile)
                                .where(t.incidents.c.id.in_(chunk))):
            known = (row.profile or {}).get("templates") or {}
            for tid in by_incident[row.id]:
                if tid in known:
                    texts[tid] = str(known[tid])
    return texts


class FamilyStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- reading -----------------------------------------------------------------------

    def latest(self) -> FamilyFit | None:
        f = template_families
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(f.c.version, f.c.fitted_at, f.c.fitted_by, f.c.templates, f.c.next_id)
                               .order_by(f.c.version.desc()).limit(1)).first()
            if row is None:
                return None
            count = conn.scalar(sa.select(sa.func.count()).select_from(template_family_stats)
                                .where(template_family_stats.c.version == row.version))
        return FamilyFit(version=row.version, fitted_at=row.fitted_at, fitted_by=row.fitted_by,
                         templates=row.templates, families=int(count or 0), next_id=row.next_id)

    def latest_version(self) -> int | None:
        with self.engine.connect() as conn:
            version = conn.scalar(sa.select(sa.func.max(template_families.c.version)))
        return int(version) if version is not None else None

    def document(self, version: int) -> TemplateFamilies | None:
        with self.engine.connect() as conn:
            data = conn.scalar(sa.select(template_families.c.document)
                               .where(template_families.c.version == version))
        return TemplateFamilies.from_json(data) if data is not None else None

    def stats(self, version: int, family: int | None = None) -> list[FamilyStats]:
        """The families of a version, most events first (then by id)."""
        s = template_family_stats
        stmt = sa.select(s).where(s.c.version == version).order_by(s.c.events.desc(), s.c.family)
        if family is not None:
            stmt = stmt.where(s.c.family == family)
        with self.engine.connect() as conn:
            return [FamilyStats(family=r.family, size=r.size, events=r.events, incidents=r.incidents,
                                pages=r.pages, last_seen=r.last_seen,
                                templates=[(str(text), int(n)) for text, n in r.templates])
                    for r in conn.execute(stmt)]

    # -- writing -----------------------------------------------------------------------

    def save(self, families: TemplateFamilies, stats: Sequence[FamilyStats], *, fitted_at: datetime,
             fitted_by: str, templates: int, next_id: int) -> int:
        """Write a fit as the newest version; returns its number. Keeps ``KEEP_VERSIONS``."""
        f, s = template_families, template_family_stats
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":   # two replicas saving at once get two versions
                conn.execute(sa.text("LOCK TABLE template_families IN EXCLUSIVE MODE"))
            version = int(conn.scalar(sa.select(sa.func.max(f.c.version))) or 0) + 1
            conn.execute(sa.insert(f).values(version=version, fitted_at=fitted_at, fitted_by=fitted_by[:200],
                                             templates=templates, next_id=next_id, document=families.to_json()))
            rows: list[dict[str, Any]] = [
                {"version": version, "family": st.family, "size": st.size, "events": st.events,
                 "incidents": st.incidents, "pages": st.pages, "last_seen": st.last_seen,
                 "templates": [[text, n] for text, n in st.templates]} for st in stats]
            if rows:
                conn.execute(sa.insert(s), rows)
            conn.execute(sa.delete(s).where(s.c.version <= version - KEEP_VERSIONS))
            conn.execute(sa.delete(f).where(f.c.version <= version - KEEP_VERSIONS))
        return version
