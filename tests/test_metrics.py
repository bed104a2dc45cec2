"""The worker's /metrics and /health, and the log events their names come from."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import orjson
import pytest

from streams import metrics
from streams.cli.produce import publish_lines
from streams.settings import Settings
from streams.local.workload import BEDROCK_CLAUDE, BEDROCK_NOVA, make_items
from tests.support import Workers, follow, get, log_events, publish_items, scraped, total

ROOT = Path(__file__).resolve().parent.parent


def test_each_counted_log_event_has_the_counter_of_its_name() -> None:
    source = "\n".join(p.read_text() for d in ("agents", "streams") for p in (ROOT / d).rglob("*.py"))
    logged = set(re.findall(r"\.(?:debug|info|warning|error|exception)\(\s*\"(\w+)\"", source))
    counters = {m.name.removeprefix("tierline_") for m in metrics.REGISTRY.collect()
                if m.type == "counter" and m.name.startswith("tierline_")}
    assert set(metrics.LOGGED) <= logged, "a counter named for a log event nobody logs"
    assert set(metrics.LOGGED) <= counters
    per_chunk = {"items_in", "items_routed", "results", "failures", "retries", "cost_usd", "realtime_usd",
                 "answer_failures", "webhooks", "items_forwarded"}
    assert counters == set(metrics.LOGGED) | per_chunk


def test_health_says_ready_once_joined_and_metrics_count_the_work(workers: Workers,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    env = workers.env()
    del env["GEMINI_API_KEY"]  # a provider this worker is not sent: said, and ready all the same
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    worker = workers.start(env)
    port = worker.web_port  # type: ignore[attr-defined]
    answers = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = get(port, "/health")
        answers.append((status, orjson.loads(body)))
        if status == 200:
            break
        time.sleep(0.2)
    status, body = answers[-1]
    assert status == 200 and body == {"ready": True, "checks": {"started": True, "ledger_loaded": True,
                                                                "broker_reachable": True, "group_joined": True,
                                                                "async_group_joined": True},
                                      "credentials_missing": {"gemini": "set GEMINI_API_KEY or GOOGLE_API_KEY"}}
    [missing] = log_events(worker, "provider_credentials_missing")
    assert missing["provider"] == "gemini"
    assert all(s == 503 and not b["ready"] for s, b in answers[:-1])
    [starting] = log_events(worker, "worker_starting")  # the settings dump, keys masked
    assert starting["environment"]["OPENAI_API_KEY"] == "***"
    assert starting["settings"]["app_id"] == env["TIERLINE_APP_ID"]
    assert env["OPENAI_API_KEY"] not in worker.log.read_text()  # type: ignore[attr-defined]

    settings = Settings.from_env(env)
    items = make_items(12, "metrics", errored=1)
    publish_items(settings, items)
    asyncio.run(publish_lines(settings, [b'{"custom_id": "metrics-bad", "provider": ']))
    ids = {item["custom_id"] for item in items}
    asyncio.run(follow(settings, lambda p: ids <= p.ended()))

    deadline = time.monotonic() + 30
    while True:  # the gauges settle a moment after the last event
        m = scraped(port)
        if total(m, "tierline_batches", state="in_flight") == 0 and total(m, "tierline_consumer_lag") == 0:
            break
        assert time.monotonic() < deadline, m
        time.sleep(0.5)
    assert total(m, "tierline_items_in_total", topic="requests") == 13
    assert total(m, "tierline_items_routed_total", tier="batch") == 12
    assert total(m, "tierline_dead_lettered_total", reason="invalid_json") == 1
    assert total(m, "tierline_results_total", tier="batch") == 11
    assert total(m, "tierline_results_total", provider="openai") == 4  # a third; the errored item is Anthropic's
    assert {dict(ls)["model"] for (n, ls) in m if n == "tierline_results_total"} == \
        {"claude-haiku-4-5", "gpt-4o-mini", "gpt-4.1-mini", BEDROCK_CLAUDE, BEDROCK_NOVA}
    assert total(m, "tierline_failures_total", tier="batch") == 1
    assert total(m, "tierline_cost_usd_total") > 0
    assert total(m, "tierline_batch_submitted_total") == total(m, "tierline_batch_settled_total") >= 3
    assert total(m, "tierline_oldest_unfinished_batch_age_seconds") == 0
    assert total(m, "tierline_ready") == 1
    assert total(m, "tierline_provider_credentials", provider="gemini") == 0
    assert total(m, "tierline_provider_credentials", provider="anthropic") == 1
    # Each success once and the errored item's ending, all in memory.
    assert total(m, "tierline_ledger_entries", where="memory") == 12
    assert total(m, "tierline_ledger_entries", where="disk") == 0
    assert total(m, "process_resident_memory_bytes") > 0

