"""The status page in a real browser (Debian's headless Chromium, driven by Selenium) on a running workload.

The page is loaded once: every change after that must come from its own refresh. A screenshot of it with batches
in flight is saved as an artefact (``TIERLINE_TEST_ARTEFACTS``, else ``.artefacts/`` at the top of the clone).
"""

from __future__ import annotations

import math
import os
import shutil
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

from streams.local.workload import make_items
from tests.support import Workers, publish, slow_emulator_workers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = Path(os.environ.get("TIERLINE_TEST_ARTEFACTS") or ROOT / ".artefacts")


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail("chromium and its driver are not installed: apt-get install chromium chromium-driver "
                    "(.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--window-size=1400,900"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    yield chrome
    chrome.quit()


@pytest.fixture(scope="module")
def worker(broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workers,
                                                                                                         dict, int]]:
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 1) as pool:
        env = pool.env(TIERLINE_DAILY_BUDGET_USD="25", TIERLINE_BATCH_MAX_ITEMS="4")
        proc = pool.start(env)
        yield pool, env, proc.web_port  # type: ignore[attr-defined]


def wait_for(browser: webdriver.Chrome, what: str, check: Callable[[webdriver.Chrome], bool], timeout: float) -> None:
    """Until the page, refreshing itself, shows ``what``; else fail with what it does show."""
    try:
        WebDriverWait(browser, timeout, poll_frequency=0.5).until(check)
    except TimeoutException:
        raise AssertionError(f"the page never showed {what} in {timeout:g} s; it shows:\n"
                             + browser.find_element(By.ID, "body").text) from None


def cells(browser: webdriver.Chrome, table: str) -> list[list[str]]:
    return [[cell.text.strip() for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")]


def hold(emulator_port: int, on: bool) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{emulator_port}/_emulator/hold",
                                     b'{"hold": true}' if on else b'{"hold": false}', method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def test_the_page_shows_the_batches_in_flight_and_updates_itself_as_they_complete(
        browser: webdriver.Chrome, worker: tuple[Workers, dict, int]) -> None:
    pool, env, web_port = worker
    browser.get(f"http://127.0.0.1:{web_port}/")
    assert browser.title == "tierline status"
    body = browser.find_element(By.ID, "body")
    assert "No batch is in flight." in body.text

    hold(pool.emulator_port, True)  # OpenAI's batches stay in progress: time to look at them
    items = make_items(12, "page", providers=("openai",))
    models = Counter(item["params"]["model"] for item in items)
    batches = sum(math.ceil(count / 4) for count in models.values())  # a batch a model, 4 items at most
    try:
        publish(env, items)
        wait_for(browser, f"{batches} batches in flight",
                 lambda b: len(b.find_elements(By.CSS_SELECTOR, "#in-flight tbody tr")) == batches, 90)
        for row in cells(browser, "in-flight"):
            assert row[1] == "openai" and row[2] in models and row[4] == f"0/{row[3]}", row
        assert browser.find_elements(By.CSS_SELECTOR, "#in-flight progress")
        assert "of a $25.00 daily budget" in browser.find_element(By.ID, "spent").text
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTEFACTS / "status-page.png"))
    finally:
        hold(pool.emulator_port, False)

    wait_for(browser, f"the {batches} batches ended", lambda b: not b.find_elements(
        By.CSS_SELECTOR, "#in-flight tbody tr") and len(b.find_elements(By.CSS_SELECTOR, "#ended tbody tr")) == batches,
        120)
    for row in cells(browser, "ended"):  # batch, provider, model, items, done, failed, cost
        assert row[3] == row[4] and row[5] == "0" and row[6].startswith("$"), row
    assert browser.find_element(By.ID, "saved").text != "$0.0000"
    browser.save_screenshot(str(ARTEFACTS / "status-page-ended.png"))
