"""A real Prometheus (Debian's) scraping a real worker, with the shipped rules and the Grafana dashboard's queries.

A workload goes through the emulator; Prometheus's own HTTP API then says whether the worker's series are scraped,
whether each recording rule and each of the dashboard's panels gives numbers, and whether an alert fires when the
emulator holds a batch (it stalls) and resolves when the batch ends.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from streams.cli.produce import publish_lines
from streams.local.stack import free_port, running
from streams.local.workload import make_items
from streams.settings import Settings
from tests.support import Workers, follow, publish, slow_emulator_workers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "tierline.rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tierline.json"
STALL_AFTER_S = 3
#: Series there are only while a batch is at the provider, while an alert fires, or once one was raised: checked
#: in the stall test.
WHILE_IN_FLIGHT = ("tierline:batches_at_provider:count", "ALERTS", "tierline:alerts:increase1h")


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **query: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}?{urllib.parse.urlencode(query)}", timeout=10) as answer:
            doc = json.load(answer)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def until(self, what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := check():
                return found
            time.sleep(0.5)
        raise AssertionError(f"Prometheus never showed {what} within {timeout:g} s")


@pytest.fixture(scope="module")
def deployment(broker_port: int, s3_port: int,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workers, dict[str, str], int]]:
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 1) as pool:
        env = pool.env(TIERLINE_STALL_AFTER_S=str(STALL_AFTER_S), TIERLINE_DAILY_BUDGET_USD="100")
        proc = pool.start(env)
        yield pool, env, proc.web_port  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def prometheus(deployment: tuple[Workers, dict[str, str], int],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed: apt-get install prometheus (.ci/run does)")
    folder = tmp_path_factory.mktemp("prometheus")
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(RULES)],
              "scrape_configs": [{"job_name": "tierline",
                                  "static_configs": [{"targets": [f"127.0.0.1:{deployment[2]}"]}]}]}
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    argv = ["prometheus", f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}"]
    with running(argv, port, log=folder / "prometheus.log"):
        yield Prometheus(f"http://127.0.0.1:{port}")


def dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(panel["title"], target["expr"]) for panel in panels for target in panel["targets"]]


def test_the_workers_series_are_scraped_and_every_rule_and_panel_gives_numbers(
        deployment: tuple[Workers, dict[str, str], int], prometheus: Prometheus) -> None:
    _, env, _ = deployment
    settings = Settings.from_env(env)
    targets = prometheus.until("the worker as a target that is up", lambda: [
        target for target in prometheus.get("/api/v1/targets")["activeTargets"] if target["health"] == "up"])
    assert targets[0]["labels"]["job"] == "tierline"
    # Two waves: a counter's first value is where Prometheus starts counting its increase from.
    for wave in ("first", "second"):
        items = make_items(12, wave, errored=1, providers=("anthropic", "openai"))
        publish(env, items)
        asyncio.run(publish_lines(settings, [b"not json: a dead letter"]))
        wanted = len(items)
        asyncio.run(follow(settings, lambda p, n=wanted: len(p.ended()) >= n and p.dead, timeout=120))
        openai = sum(item["provider"] == "openai" for item in items) * (1 if wave == "first" else 2)
        prometheus.until(f"{openai} OpenAI results counted", lambda n=openai: prometheus.query(
            f'sum(tierline_results_total{{provider="openai"}}) >= {n}'))
    groups = prometheus.get("/api/v1/rules")["groups"]
    records = [rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "recording"]
    assert len(records) == 14
    for record in records:
        if record not in WHILE_IN_FLIGHT:
            prometheus.until(f"a value of {record}", lambda name=record: prometheus.query(name))
    for title, expr in dashboard_queries():
        if not any(name in expr for name in WHILE_IN_FLIGHT):
            prometheus.until(f"data for the panel {title!r} ({expr})", lambda e=expr: prometheus.query(e))
    # Batch: about half the standard price (the emulator's usage, the shipped price table).
    cost = prometheus.until("the second wave's cost", lambda: prometheus.query("sum(tierline:cost_usd:increase1h) > 0"))
    saved = prometheus.until("its saving", lambda: prometheus.query("sum(tierline:saved_usd:increase1h) > 0"))
    assert 0.8 < float(saved[0]["value"][1]) / float(cost[0]["value"][1]) < 1.25, (cost, saved)


def test_a_stalled_batch_fires_an_alert_naming_it_which_resolves_when_the_batch_ends(
        deployment: tuple[Workers, dict[str, str], int], prometheus: Prometheus) -> None:
    pool, env, _ = deployment
    settings = Settings.from_env(env)
    hold = f"http://127.0.0.1:{pool.emulator_port}/_emulator/hold"
    urllib.request.urlopen(urllib.request.Request(hold, b'{"hold": true}', method="POST"), timeout=10).close()
    items = make_items(3, "stalled", providers=("openai",))
    try:
        publish(env, items)
        firing = prometheus.until("TierlineBatchStalled firing", lambda: [
            alert for alert in prometheus.get("/api/v1/alerts")["alerts"]
            if alert["labels"]["alertname"] == "TierlineBatchStalled" and alert["state"] == "firing"])
        for alert in firing:  # a batch a model
            assert alert["labels"]["provider"] == "openai"
            assert alert["labels"]["model"] in {item["params"]["model"] for item in items}
            assert alert["labels"]["batch_key"] in alert["annotations"]["summary"]
            assert alert["annotations"]["runbook_url"].endswith("/runbook/#stalled")
        for title, expr in dashboard_queries():
            if any(name in expr for name in WHILE_IN_FLIGHT):
                prometheus.until(f"data for the panel {title!r} ({expr})", lambda e=expr: prometheus.query(e))
        assert prometheus.query('tierline:batches_at_provider:count{provider="openai", status="in_progress"}')
    finally:
        urllib.request.urlopen(urllib.request.Request(hold, b'{"hold": false}', method="POST"), timeout=10).close()
    asyncio.run(follow(settings, lambda p: len(p.results) >= len(items), timeout=120))
    prometheus.until("TierlineBatchStalled resolved", lambda: not prometheus.query(
        'ALERTS{alertname="TierlineBatchStalled"}'))
