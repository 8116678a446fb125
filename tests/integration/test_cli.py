"""The `triage` command as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from triage.services.triage_context import TriageContextService
from triage.store import SqlStore

EXE = shutil.which("triage", path=str(Path(sys.executable).parent)) or "triage"


def run(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("command", ["serve", "consume", "api", "broker", "replay", "demo", "bench", "whatif"])
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0 and "Usage: triage " + command in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("triage, version ")


def test_bad_setting_is_a_clear_usage_error() -> None:
    result = run("api", "--port", "99999")
    assert result.returncode == 2 and "api_port" in result.stderr


@pytest.mark.integration
def test_demo_once_processes_the_bundled_storm_and_prints_figures(tmp_path: Path) -> None:
    result = run("demo", "--once", "--port", "0", cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["events_in"] == figures["events_stored"] == 3170
    assert 0 < figures["incidents_opened"] < 100 and figures["duplicates_dropped"] > 1000
    assert figures["noise_groups"] > 0   # the storm's logs that no alert joined
    assert figures["compression"] > 0.9
    assert "replay sample_storm.jsonl.gz" in result.stderr  # the progress bar
    assert (tmp_path / "triage-demo.db").exists()
    # The history before the storm and the catalog: an incident with every part of its triage filled in.
    assert "history: " in result.stderr and "13 resolved incidents with their notes" in result.stderr
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'triage-demo.db'}")
    try:
        context = TriageContextService(store).for_incident(figures["triaged_incident"])
    finally:
        store.close()
    assert context is not None
    assert context.probable_causes and all(c.evidence for c in context.probable_causes)
    assert context.recent_changes and context.responders.team and context.responders.people
    assert context.remediations and all(r.evidence for r in context.remediations) and context.similar
    assert f"probable cause: {context.probable_causes[0].component}" in result.stderr


def test_deploy_files_pass_their_check() -> None:
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(repo / "deploy" / "check.py")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_eval_commands_work_on_any_directory_in_the_formats(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    lines = []
    for i, (service, truth) in enumerate([("checkout", "INC-1"), ("checkout", "INC-1"), ("payments", "noise-1")]):
        lines.append(json.dumps({
            "id": f"e{i}", "kind": "alert", "source": "alertmanager", "occurred_at": f"2026-03-11T14:0{i}:00Z",
            "service": service, "severity": "critical", "status": "firing", "title": f"High latency {service}",
            "labels": {"alertname": "HighLatency", "service": service}, "fingerprint": f"fp{i}",
            "truth_incident": truth}))
    (alerts / "events.jsonl").write_text("\n".join(lines) + "\n")
    result = run("eval", "alerts", str(alerts), "--json", timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])["rows"]
    assert {(r["engine"], r["scope"]) for r in rows} >= {("triage", "all"), ("alertmanager", "alerts")}
    assert all(r["events"] == 3 for r in rows if r["scope"] == "all")

    # The same directory with an incidents.jsonl: a problem that recurs, and one that does not.
    recurring = tmp_path / "suggest"
    recurring.mkdir()
    redis, dns = "Redis connection refused: redis-cart:6379", "DNS lookup of productcatalogservice failed"
    cases = [("INC-1", "P1", "amara", "cartservice", redis, "2026-03-11T00"),
             ("INC-2", "P2", "lea", "frontend", dns, "2026-03-11T02"),
             ("INC-3", "P1", "amara", "cartservice", redis, "2026-03-12T00")]
    lines, incidents = [], []
    for i, (truth, problem, responder, service, title, hour) in enumerate(cases):
        lines.append(json.dumps({
            "id": f"s{i}", "kind": "alert", "source": "alertmanager", "occurred_at": f"{hour}:01:00Z",
            "service": service, "severity": "critical", "status": "firing", "title": title,
            "labels": {"alertname": "Down", "service": service}, "fingerprint": f"s{i}", "truth_incident": truth}))
        incidents.append(json.dumps({"id": truth, "problem_id": problem, "started_at": f"{hour}:00:00Z",
                                     "resolved_at": f"{hour}:30:00Z", "responder": responder,
                                     "resolution_note": f"fixed {problem}",
                                     "root_cause": {"component": service, "kind": problem}}))
    (recurring / "events.jsonl").write_text("\n".join(lines) + "\n")
    (recurring / "incidents.jsonl").write_text("\n".join(incidents) + "\n")
    result = run("eval", "suggest", str(recurring), "--json", timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {r["engine"]: r for r in json.loads(result.stdout.strip().splitlines()[-1])["rows"]}
    # No catalog: the cause from the stream; INC-3 gets INC-1 as similar, its responder and note.
    triage = rows["triage"]
    assert triage["incidents"] == 3 and triage["probable_cause_top1"] == 1.0
    assert triage["team_at_1"] is None   # no owner_team to score against
    assert triage["person_at_1"] == 1 / 3   # INC-1: nobody known yet; INC-2: amara, who resolved INC-1
    assert triage["recurring"] == 1 and triage["remediation_at_3"] == 1.0
    assert triage["with_similar"] == 1 and triage["similar_recall_at_5"] == 1.0
    assert "person@1" in result.stderr and "similar recall@5" in result.stderr   # the table

    logs = tmp_path / "logs" / "Tiny"
    logs.mkdir(parents=True)
    (logs / "Tiny_2k.log_structured.csv").write_text(
        "LineId,Content,EventId,EventTemplate\n"
        "1,Connection from 10.0.0.1 closed,E1,Connection from <*> closed\n"
        "2,Connection from 10.0.0.2 closed,E1,Connection from <*> closed\n"
        "3,Disk sda1 is full,E2,Disk <*> is full\n")
    result = run("eval", "logs", str(tmp_path / "logs"), "--json", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])["rows"]
    tiny = next(r for r in rows if r["system"] == "Tiny")
    assert tiny["lines"] == 3 and tiny["ga_triage"] == 1.0


@pytest.mark.integration
def test_bench_prints_its_figures_as_json_on_the_last_line(tmp_path: Path) -> None:
    # Both modes, small: through the real broker, and the pipeline alone.
    through = run("bench", "--events", "3000", "--json", cwd=tmp_path, timeout=240)
    assert through.returncode == 0, through.stderr[-2000:]
    figures = json.loads(through.stdout.strip().splitlines()[-1])
    assert figures["handled"] == 3000 and figures["end_to_end_events_per_s"] > 0
    assert figures["suppressed"] > 0   # the synthetic alerts repeat their fingerprints
    assert figures["cpu_s"] > 0 and figures["cpu_us_per_event"] == pytest.approx(figures["cpu_s"] / 3000 * 1e6, rel=0.02)
    # Where the CPU went: every stage of the hot path ran, and the stages with the rest
    # of the process add up to its CPU per event.
    stages = figures["stage_cpu_us_per_event"]
    assert set(stages) == {"fetch", "decode", "handoff", "dedup", "state", "correlation", "store_writes", "other"}
    assert all(stages[s] > 0 for s in ("fetch", "decode", "dedup", "correlation", "store_writes"))
    assert stages["handoff"] == 0   # one process: nothing handed over
    assert sum(stages.values()) == pytest.approx(figures["cpu_us_per_event"], abs=1.0)
    # (the broker's few milliseconds for 3,000 events may be below /proc's 10 ms tick)
    assert figures["broker_cpu_us_per_event"] >= 0 and figures["database_server_cpu_us_per_event"] is None
    # One domain in two processes: the same decisions, the CPU of each process.
    split = run("bench", "--events", "3000", "--correlator-process", "--json", cwd=tmp_path, timeout=240)
    assert split.returncode == 0, split.stderr[-2000:]
    two = json.loads(split.stdout.strip().splitlines()[-1])
    assert two["handled"] == 3000 and two["correlator_process"] is True
    assert (two["incidents"], two["suppressed"]) == (figures["incidents"], figures["suppressed"])
    assert two["correlating_process_cpu_us_per_event"] > 0 and two["fetching_process_cpu_us_per_event"] > 0
    assert two["stage_cpu_us_per_event"]["handoff"] > 0 and two["correlating_process_peak_rss_mib"] > 0
    alone = run("bench", "--no-kafka", "--events", "3000", "--json", cwd=tmp_path, timeout=240)
    assert alone.returncode == 0, alone.stderr[-2000:]
    figures = json.loads(alone.stdout.strip().splitlines()[-1])
    assert figures["events"] == 3000 and figures["pipeline_events_per_s"] > 0
    assert figures["cpu_s"] > 0 and figures["cpu_us_per_event"] == pytest.approx(figures["cpu_s"] / 3000 * 1e6, rel=0.02)


@pytest.mark.integration
def test_bench_at_a_fixed_rate_reports_latency_and_the_share_spent_in_triage(tmp_path: Path) -> None:
    result = run("bench", "--events", "600", "--rate", "300", "--json", cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["handled"] == 600
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    # Per event, decoded -> stored is part of occurred -> stored, so every percentile is too.
    assert 0 < figures["in_triage_p50_ms"] <= figures["p50_ms"]
    assert figures["in_triage_p50_ms"] <= figures["in_triage_p99_ms"] <= figures["p99_ms"]
    quarters = figures["p99_ms_per_quarter"]
    assert len(quarters) == len(figures["in_triage_p99_ms_per_quarter"]) == 4
    assert 0 < min(quarters) and max(quarters) <= figures["max_ms"]


@pytest.mark.parametrize("kind", ["alerts", "suggest", "logs"])
def test_eval_on_a_directory_in_no_known_format_says_what_is_missing(tmp_path: Path, kind: str) -> None:
    result = run("eval", kind, str(tmp_path), timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("Error: ") and ("found" in result.stderr or "no " in result.stderr)


@pytest.mark.parametrize(("args", "says"), [
    (["--members", "2", "--rate", "100"], "--members is for throughput runs"),
    (["--members", "2", "--no-kafka"], "--members is for throughput runs"),
    (["--members", "5"], "needs as many partitions"),
])
def test_bench_members_outside_what_it_can_measure_is_a_usage_error(args: list[str], says: str) -> None:
    result = run("bench", *args)
    assert result.returncode == 2 and says in result.stderr


@pytest.mark.integration
def test_bench_with_two_members_splits_the_events_between_them(tmp_path: Path) -> None:
    result = run("bench", "--events", "2000", "--members", "2", "--json", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    members = figures["per_member"]
    assert [m["events"] for m in members] == [1000, 1000]   # each holds one domain's partitions
    assert not set(members[0]["partitions"]) & set(members[1]["partitions"])
    assert figures["end_to_end_events_per_s"] > 0 and figures["consume_seconds"] > 0


@pytest.mark.integration
def test_the_demo_storm_is_decided_byte_for_byte_alike_in_one_process_and_in_two(tmp_path: Path) -> None:
    import sqlite3

    tables = {
        "memberships": "SELECT event_id, incident_id, action, rule, evidence, notify, template_id FROM memberships",
        "incidents": "SELECT id, kind, scope, title, status, severity, event_count, alert_count, suppressed_count,"
                     " opened_at, last_event_at, resolved_at FROM incidents",
        "events": "SELECT id, document FROM events",
        "signals": "SELECT key, incident_id, status, first_seen, last_seen, count FROM signals",
    }
    found = []
    # The event-time merge waits 5 ms for a caught-up topic by default: a producer's batch
    # of logs arriving later than that behind its alerts is decided in arrival order, in
    # either shape. What is compared here is the shape, so both runs wait longer.
    patient = {"TRIAGE_KAFKA_MAX_IDLE_MS": "500"}
    for shape, extra in (("one", patient), ("two", {**patient, "TRIAGE_CORRELATOR_PROCESS": "true"})):
        db = tmp_path / f"{shape}.db"
        result = subprocess.run([EXE, "demo", "--once", "--port", "0", "--database-url", f"sqlite:///{db}"],
                                capture_output=True, text=True, timeout=300, cwd=tmp_path,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", **extra})
        assert result.returncode == 0, result.stderr[-2000:]
        with sqlite3.connect(db) as conn:
            found.append({name: sorted(conn.execute(sql).fetchall()) for name, sql in tables.items()})
    assert len(found[0]["events"]) == 3170 + 2304 and found[0]["incidents"]   # the storm after the bundled history
    for name in tables:
        one, two = set(found[0][name]), set(found[1][name])
        # the rows that differ, not pytest's diff of two lists of thousands of rows
        assert one == two, f"{name}: only in one process {sorted(one - two)[:5]}; only in two {sorted(two - one)[:5]}"
