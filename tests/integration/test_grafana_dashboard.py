"""deploy/grafana's dashboard asks only for metrics that triage's /metrics exports, so it
cannot rot silently when a metric is renamed or removed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import EMBEDDER, REPO
from triage.api import create_app
from triage.store import SqlStore
from triage.services.telemetry import Metrics

GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))

# Words of PromQL that are not metric names: keywords and operators spelled as words.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
             "unless", "atan2", "inf", "nan", "start", "end"}
# Clauses whose parenthesised list holds label names, not metrics.
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, aggregations, label names,
    label values, durations and Grafana's variables left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)   # string literals
    text = re.sub(r"\{[^}]*\}", "", text)          # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)         # ranges and subqueries, $__rate_interval included
    text = _LABEL_LISTS.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)       # other Grafana variables
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def exported_series(exposition: str) -> set[str]:
    """Every series name a Prometheus text exposition offers, whether or not a labelled
    metric has a sample yet: a counter's ``_total`` (and ``_created``), a histogram's
    ``_bucket``, ``_sum`` and ``_count``, a gauge's own name."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("", "_sum", "_count", "_created"), "gauge": ("",), "info": ("_info",),
                "stateset": ("",), "gaugehistogram": ("_bucket", "_gsum", "_gcount"), "unknown": ("",)}
    names = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + s for s in suffixes[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def panel_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel, rows' nested panels included."""
    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels") or [])
    for panel in walk(dashboard.get("panels") or []):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                yield panel.get("title", "?"), target["expr"]


def unknown_metrics(dashboard: dict[str, Any], exported: set[str]) -> list[str]:
    return [f"panel {title!r} asks for {name}: not in /metrics"
            for title, expr in panel_queries(dashboard) for name in sorted(metric_names(expr) - exported)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """What a triage process's /metrics exports: the API over the registry every process
    builds (``Runtime`` makes one ``Metrics`` and gives its registry to the API)."""
    store = SqlStore.from_url(f"sqlite:///{tmp_path_factory.mktemp('metrics') / 'triage.db'}")
    try:
        with TestClient(create_app(store, embedder=EMBEDDER, registry=Metrics().registry)) as client:
            response = client.get("/metrics")
    finally:
        store.close()
    assert response.status_code == 200
    return exported_series(response.text)


def test_the_extractor_finds_metric_names_and_nothing_else() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, topic) (rate(triage_batch_processing_seconds_bucket'
            '{job=~"triage.*", reason="decode"}[$__rate_interval]))) / ignoring(x) group_left(y) '
            'clamp_min(sum without (instance) (increase(up[5m] offset 1h)), 1) > bool 0')
    assert metric_names(expr) == {"triage_batch_processing_seconds_bucket", "up"}
    assert metric_names('1 - sum(increase(a_total[$__range])) / clamp_min(sum(b_total), 1)') == {"a_total", "b_total"}
    assert metric_names("min by (component) (triage_component_up)") == {"triage_component_up"}


def test_every_panel_queries_triage_metrics() -> None:
    assert DASHBOARDS, "no dashboard in deploy/grafana/dashboards"
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        queried = [(title, metric_names(expr)) for title, expr in panel_queries(dashboard)]
        assert queried, f"{path.name}: no queries found"
        empty = [title for title, names in queried if not names]
        assert not empty, f"{path.name}: queries that name no metric: {empty}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_metric_a_panel_names_is_exported(path: Path, exported: set[str]) -> None:
    assert not unknown_metrics(json.loads(path.read_text()), exported)


def test_a_panel_naming_a_metric_that_does_not_exist_is_caught(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARDS[0].read_text())
    dashboard["panels"][1]["targets"][0]["expr"] = "sum(rate(triage_events_renamed_total[5m]))"
    assert unknown_metrics(dashboard, exported) == [
        f"panel {dashboard['panels'][1]['title']!r} asks for triage_events_renamed_total: not in /metrics"]
    # A histogram's series exist only with their suffixes, a counter's only with _total.
    assert {"triage_batch_processing_seconds_bucket", "triage_events_stored_total"} <= exported
    assert "triage_batch_processing_seconds" not in exported and "triage_events_stored" not in exported


def test_the_panels_cover_what_an_operator_watches(exported: set[str]) -> None:
    """Intake, noise, pages, lag, retries, health and latency each have a panel."""
    named = {name for path in DASHBOARDS for _, expr in panel_queries(json.loads(path.read_text()))
             for name in metric_names(expr)}
    wanted = {"triage_events_consumed_total", "triage_events_dead_lettered_total", "triage_events_suppressed_total",
              "triage_incidents_opened_total", "triage_noise_groups_opened_total", "triage_pages_due_total",
              "triage_pages_sent_total", "triage_pages_held_total", "triage_consumer_lag_messages",
              "triage_consumer_batch_retries_total", "triage_component_up",
              "triage_batch_processing_seconds_bucket", "triage_event_decision_delay_seconds_bucket"}
    assert wanted <= named, sorted(wanted - named)


def test_provisioning_points_grafana_at_the_dashboards_and_prometheus() -> None:
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = dict(str(v).rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if str(v).startswith("./"))
    [provider] = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "triage.yml").read_text())["providers"]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    [source] = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {t for job in scrape for c in job.get("static_configs", []) for t in c["targets"]}
    targets |= {f"{n}:{c['port']}" for job in scrape for c in job.get("dns_sd_configs", []) for n in c["names"]}
    assert targets == {"api:8080", "consume:9464"}
    for path in DASHBOARDS:   # each panel's data source is the dashboard's Prometheus variable
        dashboard = json.loads(path.read_text())
        assert {p["datasource"]["uid"] for p in dashboard["panels"] if p["type"] != "row"} == {"${datasource}"}
