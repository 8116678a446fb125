"""``triage demo``: broker + service + the bundled alert storm, on embedded defaults."""

from __future__ import annotations

import json
import time
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import click

from triage.broker import EmbeddedBroker
from triage.ingest.decode import event_from_dict
from triage.domain.errors import DecodeError
from triage.replay import read_lines, replay
from triage.service import Runtime, stop_on_signals
from triage.settings import Settings

SAMPLE = "sample_storm.jsonl.gz"


def count_valid(path: Path) -> int:
    valid = 0
    for line in read_lines(path):
        try:
            event_from_dict(json.loads(line))
            valid += 1
        except (ValueError, DecodeError):
            pass
    return valid


def wait_until_stored(runtime: Runtime, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    stored = runtime.store.count_events()
    while stored < expected and time.monotonic() < deadline and not runtime.stop.is_set():
        time.sleep(0.25)
        stored = runtime.store.count_events()
    return stored


def noise_figures(runtime: Runtime, produced: int, stored: int) -> dict[str, Any]:
    total = runtime.store.noise_stats().total
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
                with as_file(files("triage") / "data" / SAMPLE) as bundled:
                    path = sample or bundled
                    expected = count_valid(path)
                    result = replay(path, settings)
                    stored = wait_until_stored(runtime, expected, timeout)
                figures = noise_figures(runtime, result.produced, stored)
                click.echo(
                    f"\nprocessed {stored}/{expected} events: {figures['duplicates_dropped']} duplicates dropped, "
                    f"{figures['incidents_opened']} incidents opened ({figures['noise_groups']} noise groups "
                    f"beside them), {figures['pages']} pages, "
                    f"compression {figures['compression']:.1%}", err=True)
                if stored < expected:
                    raise click.ClickException(f"only {stored} of {expected} events were stored in {timeout:.0f} s")
                if not once:
                    click.echo(f"serving on {settings.api_url}; Ctrl-C to stop", err=True)
                    if runtime.wait():
                        raise click.ClickException(f"stopped: {runtime.failure}")
                click.echo(json.dumps(figures))
        finally:
            runtime.close()
