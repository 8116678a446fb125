"""The web view's grouping-quality and on-call pages in the real headless browser, over
the demo's data (the fixtures of test_web_view_browser.py: Debian's chromium, no network
but triage). Screenshots go to build/screenshots/ with the others."""

from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.integration.test_web_view_browser import (  # noqa: F401 - fixtures, used by name
    Served, browser, origins_loaded, screenshot, served, shown, until, use_key,
)
from triage.services.corrections import merge_incidents
from triage.store import IncidentQuery
from triage.store.feedback import FeedbackStore

pytestmark = pytest.mark.integration


def text_of(browser: WebDriver, css: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, css).text)


def test_grouping_quality_and_on_call_figures_are_shown(served: Served, browser: WebDriver) -> None:
    browser.get(f"{served.url}/ui#/quality")
    until(browser, "the key prompt", lambda b: "needs a key with the read scope" in text_of(b, "#app"))
    use_key(browser, served.read_key)
    until(browser, "the empty quality page", lambda b: "No merges or splits" in text_of(b, "#app"))

    # A responder merges two incidents: a grouping label, scored on the page.
    pods = {i.title: i for i in served.store.list_incidents(IncidentQuery()).items}
    keep = pods["Kubernetes Pod not healthy (instance 10.0.237.115:8080)"]
    away = pods["Kubernetes pod crash looping (instance 10.0.237.115:8080)"]
    merge_incidents(served.store, keep.id, [away.id], author="on-call", reason="same pod")
    browser.refresh()
    table = until(browser, "the quality table", lambda b: b.find_elements(By.CSS_SELECTOR, "#quality-table") or False)[0]
    assert table.find_element(By.CSS_SELECTOR, "tr.week").get_attribute("data-week") == "2026-03-09"
    assert [r.get_attribute("data-version") for r in table.find_elements(By.CSS_SELECTOR, "tr[data-version]")] == ["0"]
    figures = text_of(browser, ".figures")
    assert "1\nmerges" in figures and "1.000\npairwise precision" in figures   # a merge costs recall only
    assert "pairwise recall" in figures and "0.000\npairwise recall" not in figures
    screenshot(browser, "quality.png")

    # On-call: the storm's incidents paged; someone acknowledges one through PagerDuty.
    browser.get(f"{served.url}/ui#/oncall")
    rows = until(browser, "the per-service table",
                 lambda b: b.find_elements(By.CSS_SELECTOR, "#oncall-groups tbody tr") or False)
    assert rows and "—\nMTTA" in text_of(browser, ".figures")   # nobody acknowledged anything yet
    first = served.store.list_incidents(IncidentQuery()).items[-1]   # the oldest
    assert first.last_notified_at is not None
    FeedbackStore(served.store.engine).add(
        id="pd-ack-1", source="pagerduty", event_type="incident.acknowledged",
        occurred_at=first.opened_at + timedelta(minutes=3), received_at=first.opened_at + timedelta(minutes=3),
        document={"agent": {"type": "user_reference", "email": "ana@example.com"}}, incident_id=first.id,
        actor="ana@example.com")
    browser.refresh()
    until(browser, "the acknowledgement counted", lambda b: "1 incident; " in text_of(b, ".figures")
          and "MTTA" in text_of(b, ".figures") and "—\nMTTA" not in text_of(b, ".figures"))
    assert "ana@example.com" in text_of(browser, "#oncall-people")
    # The merged pod incident's pages nobody acted on rank first among the rules.
    top = browser.find_element(By.CSS_SELECTOR, "#oncall-rules tbody tr").find_elements(By.TAG_NAME, "td")
    assert [c.text for c in top[:3]] == ["KubernetesPodNotHealthy", "3", "2"]
    screenshot(browser, "oncall.png")

    # Per team needs a catalog naming teams: the page says so.
    shown(browser, "#o-by").find_element(By.CSS_SELECTOR, "option[value=team]").click()
    until(browser, "the 422 explained", lambda b: "service catalog" in text_of(b, "#app"))

    assert origins_loaded(browser) == {served.url}
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and not any(code in e["message"] for code in ("401", "403", "422"))]
    assert not severe, severe
