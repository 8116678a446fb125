"""``triage demo``: broker + service + the bundled alert storm, on embedded defaults.

Before the storm it loads a small service catalog (``data/demo_catalog.yaml``, unless
``TRIAGE_CATALOG_FILE`` names another) and replays a history of resolved incidents
(``data/demo_history.jsonl.gz``, with their resolutions in ``data/demo_resolutions.json``,
as a PagerDuty webhook would report them; ``tools/make_demo_history.py`` made both), so
that the storm's incidents come with their probable cause, recent changes, owner team,
responders, remediations and similar past incidents. It prints one such incident."""

from __future__ import annotations

import json
import time
from datetime import datetime
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import click

from triage.broker import EmbeddedBroker
from triage.domain.change import change_from_event
from triage.models.triage_context import TriageContext
from triage.services.triage_context import TriageContextService
from triage.store import IncidentQuery
from triage.store.feedback import FeedbackStore
from triage.ingest.decode import event_from_dict
from triage.domain.errors import DecodeError
from triage.replay import read_lines, replay
from triage.service import Runtime, stop_on_signals
from triage.settings import Settings

SAMPLE = "sample_storm.jsonl.gz"
CATALOG = "demo_catalog.yaml"
HISTORY = "demo_history.jsonl.gz"
RESOLUTIONS = "demo_resolutions.json"


def count_valid(path: Path) -> int:
    """Events of ``path`` the store will hold: valid, and not a change (changes are kept apart)."""
    valid = 0
    for line in read_lines(path):
        try:
            event = event_from_dict(json.loads(line))
        except (ValueError, DecodeError):
            continue
        valid += change_from_event(event) is None
    return valid


def first_time(path: Path) -> datetime | None:
    for line in read_lines(path):
        try:
            return event_from_dict(json.loads(line)).occurred_at
        except (ValueError, DecodeError):
            continue
    return None


def teach_history(runtime: Runtime, resolutions: Path) -> int:
    """Record the history's resolutions against the incidents their first alerts joined."""
    feedback = FeedbackStore(runtime.store.engine)
    taught = 0
    for item in json.loads(resolutions.read_text(encoding="utf-8")):
        stored = runtime.store.get_event(item["first_alert"])
        if stored is None or stored.membership is None:
            continue
        resolved_at = datetime.fromisoformat(item["resolved_at"].replace("Z", "+00:00"))
        feedback.add_resolution(stored.membership.incident_id, responder=item["responder"], note=item["note"],
                                resolved_at=resolved_at, received_at=resolved_at)
        taught += 1
    return taught


def triaged_incident(runtime: Runtime, since: datetime | None) -> TriageContext | None:
    """The storm's first incident whose context has every part filled in (else the fullest)."""
    service = TriageContextService(runtime.store)
    page = runtime.store.list_incidents(IncidentQuery(since=since, limit=50))
    best: tuple[int, TriageContext] | None = None
    for record in sorted(page.items, key=lambda r: (r.opened_at, r.id)):
        if since is not None and record.opened_at < since:
            continue
        context = service.for_incident(record.id)
        if context is None:
            continue
        filled = sum(map(bool, (context.probable_causes, context.recent_changes, context.responders.team,
                                context.responders.people, context.remediations, context.similar)))
        if best is None or filled > best[0]:
            best = (filled, context)
        if filled == 6:
            break
    return best[1] if best else None


def describe(context: TriageContext) -> str:
    cause = context.probable_causes[0] if context.probable_causes else None
    lines = [f"incident {context.incident_id}: {context.profile.title}"]
    if cause is not None:
        lines.append(f"  probable cause: {cause.component} ({cause.confidence:.0%}): {'; '.join(cause.evidence[:3])}")
    for change in context.recent_changes[:2]:
        lines.append(f"  recent change: {change.change.summary} ({change.evidence})")
    lines.append(f"  owner team: {context.responders.team or '-'}")
    if context.responders.people:
        lines.append("  responders: " + ", ".join(f"{p.person} ({p.confidence:.0%})" for p in context.responders.people))
    for r in context.remediations[:3]:
        lines.append(f"  remediation: {r.text}{' <' + r.url + '>' if r.url else ''}")
    if context.similar:
        lines.append("  similar past incidents: " + ", ".join(m.incident.profile.incident_id for m in context.similar[:3]))
    return "\n".join(lines)


def wait_until_stored(runtime: Runtime, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    stored = runtime.store.count_events()
    while stored < expected and time.monotonic() < deadline and not runtime.stop.is_set():
        time.sleep(0.25)
        stored = runtime.store.count_events()
    return stored


def noise_figures(runtime: Runtime, produced: int, stored: int, since: datetime | None = None) -> dict[str, Any]:
    """The storm's figures (from ``since``: the history before it is not counted)."""
    total = runtime.store.noise_stats(since=since).total
    return {
        "events_in": produced,
        "events_stored": stored,
        "duplicates_dropped": total.suppressed,
        "incidents_opened": total.incidents,
        "noise_groups": total.noise_groups,
        "pages": total.pages,
        "compression": round(total.compression, 4),
        "api": runtime.settings.api_url,
    }


def run_demo(settings: Settings, *, once: bool, broker_port: int, timeout: float, sample: Path | None) -> None:
    with EmbeddedBroker(port=broker_port) as broker:
        click.echo(f"broker: Tansu on {broker.bootstrap_servers} (in memory)", err=True)
        settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
        with as_file(files("triage") / "data" / CATALOG) as catalog:
            if settings.catalog_file is None:
                settings = settings.model_copy(update={"catalog_file": catalog})
            runtime = Runtime.build(settings)
        try:
            with stop_on_signals(runtime.stop):
                runtime.start_consumer()
                runtime.start_jobs()
                port = runtime.start_api()
                if settings.api_port == 0:
                    settings = settings.model_copy(update={"api_port": port})
                    runtime.settings = settings
                click.echo(f"api: {settings.api_url}  (docs at {settings.api_url}/docs, "
                           f"web view at {settings.api_url}/ui)", err=True)
                data = files("triage") / "data"
                with as_file(data / HISTORY) as history, as_file(data / RESOLUTIONS) as resolutions:
                    before = count_valid(history)
                    replay(history, settings)
                    if wait_until_stored(runtime, before, timeout) < before:
                        raise click.ClickException(f"the history was not stored in {timeout:.0f} s")
                    taught = teach_history(runtime, resolutions)
                    click.echo(f"history: {before} events, {taught} resolved incidents with their notes", err=True)
                with as_file(data / SAMPLE) as bundled:
                    path = sample or bundled
                    expected = count_valid(path)
                    since = first_time(path)
                    result = replay(path, settings)
                    stored = wait_until_stored(runtime, before + expected, timeout) - before
                figures = noise_figures(runtime, result.produced, stored, since)
                click.echo(
                    f"\nprocessed {stored}/{expected} events: {figures['duplicates_dropped']} duplicates dropped, "
                    f"{figures['incidents_opened']} incidents opened ({figures['noise_groups']} noise groups "
                    f"beside them), {figures['pages']} pages, "
                    f"compression {figures['compression']:.1%}", err=True)
                if stored < expected:
                    raise click.ClickException(f"only {stored} of {expected} events were stored in {timeout:.0f} s")
                context = triaged_incident(runtime, since)
                if context is not None:
                    click.echo("\n" + describe(context), err=True)
                    figures["triaged_incident"] = context.incident_id
                if not once:
                    click.echo(f"serving on {settings.api_url}; Ctrl-C to stop", err=True)
                    if runtime.wait():
                        raise click.ClickException(f"stopped: {runtime.failure}")
                click.echo(json.dumps(figures))
        finally:
            runtime.close()
