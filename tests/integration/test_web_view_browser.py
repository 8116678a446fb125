"""The web view and the API docs in a real headless browser (Debian's chromium and
chromedriver, driven by Selenium), over the demo's data, with no network but triage.

Screenshots of each page are kept in build/screenshots/ (README, "Web view")."""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import EMBEDDER, REPO, skip_or_fail
from triage.api import create_app
from triage.ingest.decode import event_from_dict
from triage.services.pipeline import Pipeline
from triage.store import IncidentQuery, SqlStore
from triage.store.api_keys import ApiKeyStore, Scope

pytestmark = pytest.mark.integration
SCREENSHOTS = REPO / "build" / "screenshots"
WIDTH = 1440
WAIT_S = 60   # generous: a loaded 2-core machine


@dataclass
class Served:
    url: str
    store: SqlStore
    read_key: str      # read scope only
    ingest_key: str    # read and ingest


def replay_demo(store: SqlStore) -> None:
    """The demo's bundled storm (``triage demo``), straight into the store without Kafka."""
    lines = gzip.decompress((files("triage") / "data" / "sample_storm.jsonl.gz").read_bytes()).splitlines()
    events = sorted((event_from_dict(json.loads(line)) for line in lines), key=lambda e: (e.occurred_at, e.id))
    pipeline = Pipeline(store, EMBEDDER)
    for i in range(0, len(events), 500):
        pipeline(events[i:i + 500])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    store = SqlStore.from_url(f"sqlite:///{tmp_path_factory.mktemp('web') / 'triage.db'}")
    replay_demo(store)
    keys = ApiKeyStore(store.engine)
    _, read_key = keys.create("browser-read", {Scope.read})
    _, ingest_key = keys.create("browser-ingest", {Scope.read, Scope.ingest})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(store, embedder=EMBEDDER), log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the API did not start"
    try:
        yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", store, read_key, ingest_key)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        store.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        skip_or_fail("Debian's chromium and chromium-driver are not installed (make peers installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
                 "--disable-extensions", "--hide-scrollbars", f"--window-size={WIDTH},1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                 # No network but triage: names resolve to nothing, and anything not on
                 # loopback goes to a proxy that is not there.
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                 "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(WAIT_S)
    try:
        yield chrome
    finally:
        chrome.quit()


def until(browser: WebDriver, what: str, check: Callable[[WebDriver], Any]) -> Any:
    try:
        return WebDriverWait(browser, WAIT_S, poll_frequency=0.1).until(check)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}; the page says: "
                             f"{browser.find_element(By.TAG_NAME, 'body').text[:2000]}") from None


def shown(browser: WebDriver, css: str) -> WebElement:
    return until(browser, css, lambda b: next((e for e in b.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()),
                                              False))


def screenshot(browser: WebDriver, name: str, max_height: int = 1600) -> Path:
    """The page at full width and up to ``max_height`` pixels tall."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    metrics = {"width": WIDTH, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": min(height, max_height)})
    path = SCREENSHOTS / name
    try:
        assert browser.save_screenshot(str(path))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


def origins_loaded(browser: WebDriver) -> set[str]:
    return set(browser.execute_script(
        "return [location.origin, ...performance.getEntriesByType('resource').map(e => new URL(e.name).origin)]"))


def use_key(browser: WebDriver, key: str) -> None:
    edit = browser.find_element(By.ID, "key-edit")
    if edit.is_displayed():
        edit.click()
    field = shown(browser, "#key-input")
    field.clear()
    field.send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()


def test_docs_render_swagger_ui_and_redoc_with_the_network_off(served: Served, browser: WebDriver) -> None:
    browser.get(f"{served.url}/docs")
    title = shown(browser, ".swagger-ui .info .title")
    assert title.text.startswith("triage")
    until(browser, "the operations", lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) > 20)
    assert origins_loaded(browser) == {served.url}
    screenshot(browser, "docs.png", max_height=1000)

    browser.get(f"{served.url}/redoc")
    until(browser, "ReDoc's rendering", lambda b: "Incidents, newest first" in b.find_element(By.TAG_NAME, "body").text)
    assert origins_loaded(browser) == {served.url}


def test_on_call_finds_an_incident_its_evidence_and_merges_two(served: Served, browser: WebDriver) -> None:
    browser.get(f"{served.url}/ui")
    # The API needs keys: the page says so and asks for one.
    until(browser, "the key prompt", lambda b: "needs a key with the read scope" in b.find_element(By.ID, "app").text)
    use_key(browser, served.read_key)

    # The incident list: the storm's seven incidents (with a transient crash loop that pages
    # nobody), newest first.
    rows = until(browser, "the incident list",
                 lambda b: b.find_elements(By.CSS_SELECTOR, "#incidents tbody tr") or False)
    assert len(rows) == 7
    assert "7 incidents" in browser.find_element(By.CSS_SELECTOR, ".filters .count").text
    screenshot(browser, "incidents.png")

    # Filter by service, then open an incident.
    service = browser.find_element(By.ID, "f-service")
    service.send_keys("emailservice\n")
    until(browser, "the service filter", lambda b: "f-service=" not in b.current_url and "service=emailservice" in
          b.current_url and len(b.find_elements(By.CSS_SELECTOR, "#incidents tbody tr")) == 1)
    browser.find_element(By.LINK_TEXT, "Container killed (instance 10.3.174.107:8080)").click()

    # Its evidence: per event, the decision's sentence and each score component.
    shown(browser, "#incident")
    joined = until(browser, "the events", lambda b: b.find_elements(By.CSS_SELECTOR, "tr[data-rule=correlated]") or False)
    assert len(joined) > 100
    first = joined[0]
    assert first.find_element(By.CSS_SELECTOR, ".sentence").text.startswith("joined because: same service cartservice")
    components = {c.get_attribute("data-component"): c.text for c in first.find_elements(By.CSS_SELECTOR, "[data-component]")}
    assert set(components) == {"topology", "time", "text"}
    assert components["topology"] == "topology 1.00 ×0.45"
    assert "score 1.00 ≥ 0.55" in first.text
    # The demo's defaults: the first page waits out auto_pause (480 s), then one update.
    assert "2 pages due" in browser.find_element(By.ID, "pages").text
    assert "first page" in browser.find_element(By.ID, "pages").text
    # Its triage: the probable cause with its evidence (no catalog here: the stream alone).
    cause = browser.find_element(By.ID, "probable-cause").text
    assert "first sign of the incident" in cause, cause
    screenshot(browser, "incident.png")

    # Noise over time: the chart, drawn by the page.
    browser.find_element(By.CSS_SELECTOR, "[data-nav=noise]").click()
    bars = until(browser, "the chart", lambda b: b.find_elements(By.CSS_SELECTOR, "#chart-volume rect[data-series=events]") or False)
    assert len(bars) == 2   # 08:00 and 09:00
    assert "3,170" in browser.find_element(By.CSS_SELECTOR, ".figures").text
    screenshot(browser, "noise.png")

    # Merge "pod crash looping" into "Pod not healthy" (the same pod): refused with a
    # read-only key, with a message saying which scope is missing; then done with one
    # that has the ingest scope.
    pods = {i.title: i.id for i in served.store.list_incidents(IncidentQuery()).items}
    keep = pods["Kubernetes Pod not healthy (instance 10.0.237.115:8080)"]
    away = pods["Kubernetes pod crash looping (instance 10.0.237.115:8080)"]
    browser.get(f"{served.url}/ui#/incidents/{keep}")

    def merge() -> None:
        actions = shown(browser, "#actions")
        if actions.get_attribute("open") is None:
            actions.find_element(By.TAG_NAME, "summary").click()
        box = shown(browser, f"#merge-candidates input[value='{away}']")
        box.click()
        author = browser.find_element(By.ID, "merge-author")
        author.clear()
        author.send_keys("on-call 3am")
        browser.find_element(By.ID, "merge-reason").send_keys("same pod")
        browser.find_element(By.ID, "merge-submit").click()

    merge()
    refused = shown(browser, "#merge-notice .notice.err")
    assert "lacks the ingest scope" in refused.text
    assert served.store.get_incident(away).status != "merged"   # type: ignore[union-attr]

    use_key(browser, served.ingest_key)
    until(browser, "the page again", lambda b: b.find_elements(By.CSS_SELECTOR, "#actions:not([open])"))
    merge()
    done = shown(browser, "#detail-notice .notice.ok")
    assert f"Merged {away} into this incident" in done.text
    merged = served.store.get_incident(away)
    assert merged is not None and merged.status == "merged" and merged.merged_into == keep
    kept = served.store.get_incident(keep)
    assert kept is not None and kept.event_count == 965 + 1585
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "merged.png", max_height=1100)

    assert origins_loaded(browser) == {served.url}
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
              and "401" not in entry["message"] and "403" not in entry["message"]]
    assert not severe, severe
