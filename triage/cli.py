"""The ``triage`` command. Every setting comes from TRIAGE_* variables; flags override them."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from triage import __version__
from triage.settings import Settings

if TYPE_CHECKING:
    from triage.models.embedder import Embedder

DEMO_DATABASE = Path("triage-demo.db")


def build_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise click.UsageError(f"invalid setting: {exc}") from None


def _embedder(settings: Settings) -> Embedder:
    """The process's embedder (``Settings.embedder``). Without the model the command stops
    here, saying how to install it, rather than decide differently."""
    from triage.models.embedder import EmbedderUnavailable, make_embedder

    try:
        return make_embedder(settings.embedder)
    except EmbedderUnavailable as exc:
        raise click.ClickException(str(exc)) from None


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)   # a line per page sent; failures are logged by triage


kafka_opts = [
    click.option("--bootstrap-servers", "kafka_bootstrap_servers", help="Kafka bootstrap servers [TRIAGE_KAFKA_BOOTSTRAP_SERVERS]"),
    click.option("--group-id", "kafka_group_id", help="consumer group [TRIAGE_KAFKA_GROUP_ID]"),
    click.option("--topic-alerts", help="[TRIAGE_TOPIC_ALERTS]"),
    click.option("--topic-logs", help="[TRIAGE_TOPIC_LOGS]"),
    click.option("--topic-traces", help="[TRIAGE_TOPIC_TRACES]"),
    click.option("--topic-dlq", help="dead-letter topic [TRIAGE_TOPIC_DLQ]"),
]
db_opts = [click.option("--database-url", help="SQLAlchemy URL: sqlite:///file.db or postgresql://… [TRIAGE_DATABASE_URL]")]
api_opts = [
    click.option("--host", "api_host", help="API listen address [TRIAGE_API_HOST]"),
    click.option("--port", "api_port", type=int, help="API port, 0 = any free [TRIAGE_API_PORT]"),
]


def with_options(*groups: list[Any]) -> Any:
    def decorate(f: Any) -> Any:
        for group in reversed(groups):
            for option in reversed(group):
                f = option(f)
        return f
    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="triage")
def cli() -> None:
    """triage: deduplicate, group and explain alerts, logs and traces before they page anyone."""


def run_process(opts: dict[str, Any], *, consumer: bool, api: bool) -> int:
    """Build the runtime from settings, start what this command runs, wait for a signal.
    Returns the exit code: 0 after a signal, 1 when the process stopped on a failure (a
    supervisor's restart-on-failure then acts). A dependency that is down (the database
    at start-up, the broker, a page target) is waited for, never a reason to exit."""
    from triage.service import ExposureError, Interrupted, ListenError, Runtime, stop_on_signals
    from triage.services.catalog import CatalogFileError

    settings = build_settings(**opts)
    _logging(settings)
    _embedder(settings)   # refused here, before waiting for a database, when the model is missing
    stop = threading.Event()
    with stop_on_signals(stop):
        try:
            runtime = Runtime.build(settings, stop=stop)
        except Interrupted:
            return 0
        except CatalogFileError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            if api:
                try:
                    runtime.check_api_exposure()
                    port = runtime.start_api()
                except (ExposureError, ListenError) as exc:
                    raise click.ClickException(str(exc)) from None
                click.echo(f"triage API on http://{settings.api_host}:{port}", err=True)
            else:
                runtime.start_metrics_server()
            if consumer:
                runtime.start_consumer()
                runtime.start_sender()
                runtime.start_jobs()
            return runtime.wait()
        finally:
            runtime.close()


@cli.command()
@with_options(kafka_opts, db_opts, api_opts)
@click.pass_context
def serve(ctx: click.Context, **opts: Any) -> None:
    """Consumer and API in one process."""
    ctx.exit(run_process(opts, consumer=True, api=True))


@cli.command()
@with_options(kafka_opts, db_opts)
@click.option("--metrics-port", type=int, help="serve /metrics on this port, 0 = off [TRIAGE_METRICS_PORT]")
@click.pass_context
def consume(ctx: click.Context, **opts: Any) -> None:
    """The Kafka consumer alone (run several in one group to scale out)."""
    ctx.exit(run_process(opts, consumer=True, api=False))


@cli.command()
@with_options(kafka_opts[:1], db_opts, api_opts)
@click.pass_context
def api(ctx: click.Context, **opts: Any) -> None:
    """The HTTP API alone."""
    ctx.exit(run_process(opts, consumer=False, api=True))


@cli.command()
@click.option("--port", type=int, default=9092, show_default=True, help="port on 127.0.0.1")
@click.pass_context
def broker(ctx: click.Context, port: int) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, in memory) on loopback, for development.

    SIGTERM, SIGINT and SIGHUP stop Tansu too, and Tansu dies with this process on Linux
    even when it is killed outright. Exits non-zero if Tansu exits on its own."""
    from triage.broker import BrokerError, EmbeddedBroker, stop_on_signals

    asked = threading.Event()
    with stop_on_signals(asked):   # before Tansu starts: a signal at any time stops it too
        try:
            b = EmbeddedBroker(port=port, quiet=False).start()
        except BrokerError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Tansu listening on {b.bootstrap_servers}; Ctrl-C to stop", err=True)
        code = b.run_until(asked)
    ctx.exit(code)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_options(kafka_opts)
@click.option("--limit", type=int, help="produce at most this many lines")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def replay(file: Path, limit: int | None, no_progress: bool, **opts: Any) -> None:
    """Produce a JSONL (or .jsonl.gz) file of events into Kafka: alerts, logs and spans to their topics."""
    from triage.replay import replay as do_replay

    settings = build_settings(**opts)
    result = do_replay(file, settings, progress=not no_progress, limit=limit)
    click.echo(f"produced {result.produced} events: {result.by_topic}", err=True)


@cli.command()
@click.option("--once", is_flag=True, help="exit after the storm is processed; print the figures as JSON")
@click.option("--broker-port", type=int, default=0, help="Tansu port (default: any free port)")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="seconds to wait for processing")
@click.option("--file", "sample", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="replay this JSONL file instead of the bundled storm")
@with_options(db_opts, api_opts)
def demo(once: bool, broker_port: int, timeout: float, sample: Path | None, **opts: Any) -> None:
    """Start a broker, serve, and replay the bundled alert storm into it."""
    from triage.demo import run_demo

    settings = build_settings(**opts)
    if "database_url" not in settings.model_fields_set:
        # A fresh embedded database each run, so the figures describe this storm alone.
        for suffix in ("", "-wal", "-shm"):
            Path(f"{DEMO_DATABASE}{suffix}").unlink(missing_ok=True)
        settings = settings.model_copy(update={"database_url": f"sqlite:///{DEMO_DATABASE}"})
    _logging(settings.model_copy(update={"log_level": "WARNING"}))
    from triage.services.catalog import CatalogFileError
    _embedder(settings)   # refused before the broker starts, when the model is missing
    try:
        run_demo(settings, once=once, broker_port=broker_port, timeout=timeout, sample=sample)
    except CatalogFileError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--events", "count", type=int, default=100_000, show_default=True, help="events to send")
@click.option("--unique-share", type=float, default=0.01, show_default=True,
              help="share of distinct message templates (1.0 = every text unique)")
@click.option("--rate", type=float, default=0, help="produce at this many events/s and report latency (0 = as fast "
              "as possible, report throughput)")
@click.option("--no-kafka", is_flag=True, help="time correlation + store alone, on the same events, without a broker")
@click.option("--spacing-ms", type=float, default=10.0, show_default=True,
              help="event time between two events (throughput runs): 100 makes 1M events span 28 h, "
                   "past max_incident_age, so incidents close and the window rolls")
@click.option("--members", type=click.IntRange(min=1), default=1, show_default=True,
              help="consumer processes in one group (throughput runs), the events spread over one "
                   "correlation domain per member")
@click.option("--correlator-process", is_flag=True,
              help="correlate and store in a child process, as TRIAGE_CORRELATOR_PROCESS=true does")
@with_options(db_opts)
@click.option("--json", "as_json", is_flag=True, help="print the figures as one JSON object on the last line")
def bench(count: int, unique_share: float, rate: float, no_kafka: bool, spacing_ms: float, members: int,
          correlator_process: bool, as_json: bool, **opts: Any) -> None:
    """Speed and memory: events/s end to end, or p50/p99 latency at a fixed rate; peak RSS."""
    from triage.evaluation.bench import run_bench, run_group_bench, run_store_bench

    settings = build_settings(**opts)
    if correlator_process:
        settings = settings.model_copy(update={"correlator_process": True})
    _logging(settings.model_copy(update={"log_level": "WARNING"}))
    _embedder(settings)   # refused before the broker starts, when the model is missing
    if members > 1 and (rate or no_kafka):
        raise click.UsageError("--members is for throughput runs through the broker (no --rate, no --no-kafka)")
    if members > settings.topic_partitions:
        raise click.UsageError(f"--members {members} needs as many partitions; TRIAGE_TOPIC_PARTITIONS "
                               f"is {settings.topic_partitions}")
    if members > 1:
        figures = run_group_bench(settings, events=count, unique_share=unique_share, members=members,
                                  spacing_ms=spacing_ms)
    elif no_kafka:
        figures = run_store_bench(settings, events=count, unique_share=unique_share, spacing_ms=spacing_ms)
    else:
        figures = run_bench(settings, events=count, unique_share=unique_share, rate=rate or None,
                            spacing_ms=spacing_ms, progress=not as_json)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        click.echo(f"{key:<{width}}  {value}", err=as_json)
    if as_json:
        click.echo(json.dumps(figures))


@cli.group(name="eval")
def eval_group() -> None:
    """Measure grouping quality on labeled data (offline, in event-time order)."""


_EVAL_JSON = click.option("--json", "as_json", is_flag=True,
                          help="also print all rows as one JSON object on the last line")


@contextmanager
def _data_errors() -> Iterator[None]:
    """A directory not in the expected format is the user's to fix: one line, exit 1."""
    try:
        yield
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _echo_rows(rows: list[dict[str, Any]], table: str, as_json: bool, embedder: str) -> None:
    """Which embedder produced the figures, then the table for people (on stderr with
    --json), and the rows as JSON on the last line."""
    click.echo(f"embedder: {embedder}", err=as_json)
    click.echo(table, err=as_json)
    if as_json:
        click.echo(json.dumps({"embedder": embedder, "rows": rows}))


@eval_group.command(name="alerts")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--catalog", is_flag=True,
              help="also run triage with each DIR's services.yaml declared (depends_on), "
                   "as a deployment with TRIAGE_TOPOLOGY_FILE would")
@_EVAL_JSON
def eval_alerts(dirs: tuple[Path, ...], catalog: bool, as_json: bool) -> None:
    """Triage vs fingerprint dedup vs Alertmanager group_by on DIR/events.jsonl[.gz] with truth_incident."""
    from triage.evaluation.alerts import evaluate_alerts, format_alerts_table

    embedder = _embedder(build_settings())
    with _data_errors():
        rows = [row for d in dirs for row in evaluate_alerts(d, catalog=catalog, embedder=embedder)]
    _echo_rows(rows, format_alerts_table(rows), as_json, embedder.name)


@eval_group.command(name="suggest")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@_EVAL_JSON
def eval_suggest(dirs: tuple[Path, ...], as_json: bool) -> None:
    """Probable cause, owner team, responders, remediations and similar incidents vs no-model baselines, on DIR's events, incidents.jsonl and services.yaml."""
    from triage.evaluation.suggestions import evaluate_suggestions, format_suggestions_table

    embedder = _embedder(build_settings())
    with _data_errors():
        rows = [row for d in dirs for row in evaluate_suggestions(d, embedder=embedder)]
    _echo_rows(rows, format_suggestions_table(rows), as_json, embedder.name)


@eval_group.command(name="logs")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_EVAL_JSON
def eval_logs(directory: Path, as_json: bool) -> None:
    """Template grouping accuracy of triage vs Drain3 on loghub-style *_2k.log_structured*.csv files."""
    from triage.evaluation.loghub import evaluate_logs, format_logs_table

    with _data_errors():
        rows = evaluate_logs(directory)
    _echo_rows(rows, format_logs_table(rows), as_json, "none (log templates are mined, not embedded)")


@cli.command()
@click.option("--set", "assignments", multiple=True, required=True, metavar="NAME=VALUE",
              help="a candidate parameter value, e.g. --set threshold=0.6 (repeat for several)")
@click.option("--since", help="replay the events that occurred at or after (RFC 3339; no zone: UTC) "
              "[default: 24 h before --until]")
@click.option("--until", help="and before (default: now)")
@click.option("--transient-s", type=click.FloatRange(0, 86400), default=300.0, show_default=True,
              help="an alert resolved within this many seconds of firing is transient; a page of a group holding "
                   "only transient alerts is a noise page")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@click.option("--json", "as_json", is_flag=True, help="print the result as one JSON object on the last line "
              "(the shape of POST /models/parameters/preview's answer)")
@with_options(db_opts)
def whatif(assignments: tuple[str, ...], since: str | None, until: str | None, transient_s: float,
           no_progress: bool, as_json: bool, **opts: Any) -> None:
    """What candidate parameter values would have done to a stored window, next to the values
    in force: pages, noise pages, incidents, compression, the incidents that would merge or
    split, and precision and recall against responders' merges and splits. Changes nothing."""
    from tqdm import tqdm

    from triage.api.whatif_schemas import PreviewPublic
    from triage.models.parameters import CorrelationParameters
    from triage.models.topology import ServiceGraph
    from triage.services.whatif import WindowTooLarge, what_if
    from triage.store import SqlStore
    from triage.store.parameters import ParameterStore
    from triage.store.replay_window import count_window
    from triage.whatif_report import default_window, format_whatif, parse_assignments, parse_time

    settings = build_settings(**opts)
    _logging(settings.model_copy(update={"log_level": "WARNING"}))
    try:
        values = parse_assignments(assignments)
        start, end = default_window(parse_time(since) if since else None, parse_time(until) if until else None)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if start >= end:
        raise click.UsageError("--since must be before --until")
    embedder = _embedder(settings)
    store = SqlStore.from_url(settings.database_url)
    try:
        in_force = ParameterStore(store.engine).current()
        try:
            candidate = CorrelationParameters.model_validate({**in_force.parameters.model_dump(), **values})
        except ValidationError as exc:
            raise click.UsageError("invalid parameter value: " + "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'values'}: {e['msg']}" for e in exc.errors())) from None
        topology = settings.topology_file
        bar = tqdm(total=count_window(store.engine, start, end), unit="events", desc="replay",
                   disable=no_progress, file=sys.stderr)
        try:
            result = what_if(store.engine, candidate, in_force.parameters, start, end, transient_s=transient_s,
                             topology=(lambda: ServiceGraph.from_topology(topology)) if topology else None,
                             progress=bar.update, embedder=embedder)
        except WindowTooLarge as exc:
            raise click.UsageError(str(exc)) from None
        finally:
            bar.close()
    finally:
        store.close()
    click.echo(format_whatif(result, in_force.version), err=as_json)
    if as_json:
        click.echo(PreviewPublic.of(result, in_force.version).model_dump_json())


@cli.group()
def families() -> None:
    """Recurring alert families: HDBSCAN over the embeddings of alert templates."""


@families.command(name="fit")
@with_options(db_opts)
@click.option("--limit", type=int, default=20, show_default=True, help="families to list")
def families_fit(limit: int, **opts: Any) -> None:
    """Fit the alert families once, now, store them as a new version and list the largest.

    `triage serve` and `triage consume` refit every TRIAGE_FAMILIES_INTERVAL_S."""
    from triage.services.families_job import fit_and_store
    from triage.store import SqlStore

    settings = build_settings(**opts)
    _logging(settings.model_copy(update={"log_level": "WARNING"}))
    embedder = _embedder(settings)
    store = SqlStore.from_url(settings.database_url)
    try:
        result = fit_and_store(store.engine, holder="triage families fit", force=True, embedder=embedder)
    finally:
        store.close()
    if result is None:
        click.echo("no alert templates decided yet: nothing to fit", err=True)
        return
    click.echo(f"alert families v{result.version}: {result.templates} templates, {result.families} families, "
               f"{result.outliers} templates in none ({result.seconds:.1f} s)")
    if result.stats:
        click.echo(f"{'id':>5}  {'size':>4}  {'events':>7}  {'incidents':>9}  {'pages':>5}  {'last seen':<20}  example")
    for st in result.stats[:limit]:
        seen = f"{st.last_seen:%Y-%m-%d %H:%M:%S}" if st.last_seen else "-"
        example = st.templates[0][0] if st.templates else ""
        click.echo(f"{st.family:>5}  {st.size:>4}  {st.events:>7}  {st.incidents:>9}  {st.pages:>5}  {seen:<20}  "
                   f"{example[:70]}")


@cli.group()
def keys() -> None:
    """API keys: scopes read (incidents, stats), ingest (webhooks), admin (everything)."""


@keys.command(name="create")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(["read", "ingest", "admin"]),
              help="repeat for several scopes")
@click.option("--name", default="", help="who or what the key is for")
@with_options(db_opts)
def keys_create(scopes: tuple[str, ...], name: str, **opts: Any) -> None:
    """Create a key; its token is printed once, on stdout, and stored only as a hash."""
    from triage.store import SqlStore
    from triage.store.api_keys import ApiKeyStore, Scope

    store = SqlStore.from_url(build_settings(**opts).database_url)
    key, token = ApiKeyStore(store.engine).create(name or ",".join(scopes), {Scope(s) for s in scopes})
    store.close()
    click.echo(f"created {key.id} with scopes {', '.join(sorted(scopes))}; keep the token, it is not shown again:",
               err=True)
    click.echo(token)


@keys.command(name="list")
@with_options(db_opts)
def keys_list(**opts: Any) -> None:
    """List keys (never their tokens)."""
    from triage.store import SqlStore
    from triage.store.api_keys import ApiKeyStore

    store = SqlStore.from_url(build_settings(**opts).database_url)
    for key in ApiKeyStore(store.engine).list():
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        click.echo(f"{key.id}  {','.join(sorted(s.value for s in key.scopes)):<18}  {state:<24}  {key.name}")
    store.close()


@keys.command(name="revoke")
@click.argument("key_id")
@with_options(db_opts)
def keys_revoke(key_id: str, **opts: Any) -> None:
    """Revoke a key by its id."""
    from triage.store import SqlStore
    from triage.store.api_keys import ApiKeyStore

    store = SqlStore.from_url(build_settings(**opts).database_url)
    revoked = ApiKeyStore(store.engine).revoke(key_id)
    store.close()
    if not revoked:
        raise click.ClickException(f"no active key {key_id}")
    click.echo(f"revoked {key_id}", err=True)


def main() -> None:
    cli(prog_name="triage")


if __name__ == "__main__":
    main()
