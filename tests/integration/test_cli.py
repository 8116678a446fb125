"""The `triage` command as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXE = shutil.which("triage", path=str(Path(sys.executable).parent)) or "triage"


def run(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("command", ["serve", "consume", "api", "broker", "replay", "demo"])
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
    assert figures["compression"] > 0.9
    assert "replay sample_storm.jsonl.gz" in result.stderr  # the progress bar
    assert (tmp_path / "triage-demo.db").exists()


def test_deploy_files_pass_their_check() -> None:
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(repo / "deploy" / "check.py")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
