"""The daily spend cap holds batches back, never drops them, and lets them go when there is room."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.error
import urllib.request

import orjson
import pytest

from core.budget import BudgetLog
from core.cost import DailyBudget
from streams.local.stack import tierline_argv
from streams.settings import Settings
from streams.local.workload import make_items
from tests.support import Workers, follow, log_events, publish, submissions, topic_values, wait_for_log


def test_a_batch_that_would_pass_the_cap_waits_until_actual_costs_leave_room(
        workers: Workers, emulator_port: int) -> None:
    # 100 claude-haiku-4-5 items with max_tokens 256 are estimated at about $0.066 a batch, at
    # half price; the emulator's answers are far shorter, so a batch costs about $0.01 in fact.
    env = workers.env(TIERLINE_DAILY_BUDGET_USD="0.1", TIERLINE_BATCH_MAX_ITEMS="100")
    worker = workers.start(env)
    items = make_items(200, "capped", providers=("anthropic",))
    publish(env, items)

    [held] = wait_for_log(worker, "batch_held")
    assert held["items"] == 100 and held["estimated_usd"] > 0.1 - held["spent_today_usd"]
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(Settings.from_env(env), lambda p: ids <= set(p.results), timeout=120))
    assert set(progress.results) == ids  # held, never dropped
    counts = submissions(emulator_port)
    assert all(counts[cid] == 1 for cid in ids)
    submitted = log_events(worker, "batch_submitted")
    assert len(submitted) == 2 and submitted[1]["timestamp"] > held["timestamp"]


def test_two_workers_releasing_at_the_same_moment_never_pass_the_cap_together(
        workers: Workers, emulator_port: int) -> None:
    # Room for three batches' estimates (about $0.066 each) at a time; each worker alone would see
    # room for three of its own, and both close their first batches in the same second. Async calls
    # (about $0.0013 each at most, at full price) lease their share of the same budget meanwhile.
    env = workers.env(TIERLINE_DAILY_BUDGET_USD="0.2", TIERLINE_BATCH_MAX_ITEMS="100", TIERLINE_PARTITIONS="4",
                      TIERLINE_BUDGET_LEASE_USD="0.01")
    pair = [workers.start(env), workers.start(env)]
    for proc in pair:
        until_ready(proc.web_port)  # type: ignore[attr-defined]
    time.sleep(3)  # the group settled: each worker has two partitions
    items = make_items(800, "shared-cap", providers=("anthropic",))
    calls = [{**item, "tier": "async"} for item in make_items(40, "shared-cap-call", providers=("anthropic",))]
    publish(env, items + calls)
    ids = {item["custom_id"] for item in items + calls}
    settings = Settings.from_env(env)
    progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=240))
    assert set(progress.results) == ids and all(submissions(emulator_port)[item["custom_id"]] == 1 for item in items)
    assert all(log_events(proc, "batch_submitted") for proc in pair)  # both workers released batches
    spent = sum(events[0]["cost_usd"] for events in progress.results.values())
    assert {events[0]["tier"] for events in progress.results.values()} == {"batch", "async"} and spent <= 0.2

    # Every grant on the one log, batches' and calls' leases alike, folded as each worker folds it.
    budget = DailyBudget(0.2, time.time)
    log = BudgetLog(budget)
    for offset, doc in enumerate(asyncio.run(topic_values(settings, settings.topics.budget))):
        log.apply(offset, doc)
        assert budget.spent() <= 0.2 + 1e-9
    leases = [key for key, _ in budget._batches.items() if key.startswith("~calls#")]
    assert leases, "the async calls took no lease"

    # The report says today's spend against the cap, per tier.
    report = subprocess.run(tierline_argv("report", "--json"), capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TIERLINE_ENV_FILE": "", "TIERLINE_BROKER": settings.broker,
                                 "TIERLINE_TOPIC_PREFIX": settings.topic_prefix, "TIERLINE_DAILY_BUDGET_USD": "0.2"})
    assert report.returncode == 0, report.stderr
    today = orjson.loads(report.stdout)["today"]
    assert set(today["by_tier"]) == {"batch", "async"} and today["spent_usd"] == pytest.approx(spent, abs=1e-5)

    # Spend over time, from every batch's records: its estimate from its intent, its cost once it ended.
    records = [r for r in asyncio.run(topic_values(settings, settings.topics.batches)) if "batch_key" in r]
    changes = sorted([(r["at"], r["estimated_usd"]) for r in records if r["state"] == "intent"]
                     + [(r["at"], r["cost_usd"] - r["estimated_usd"]) for r in records if r["state"] == "ended"])
    one_item = max(r["estimated_usd"] / r["item_count"] for r in records if r["state"] == "intent")
    spend, most = 0.0, 0.0
    for _, change in changes:
        spend += change
        most = max(most, spend)
    assert most <= 0.2 + one_item, f"spend reached ${most:.4f} against a cap of $0.20"


def until_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        assert time.monotonic() < deadline, "a worker never became ready"
        time.sleep(0.5)


def test_past_the_cap_async_calls_wait_with_an_alert_and_realtime_calls_are_refused_429(
        workers: Workers) -> None:
    import anthropic

    # An async call of claude-haiku-4-5 with max_tokens 256 may cost $0.0013: a budget of $0.001 has no room.
    env = workers.env(TIERLINE_DAILY_BUDGET_USD="0.001", TIERLINE_BUDGET_LEASE_USD="0.0005")
    worker = workers.start(env)
    calls = [{**item, "tier": "async"} for item in make_items(3, "over-cap", providers=("anthropic",))]
    publish(env, calls)
    settings = Settings.from_env({**env, "TIERLINE_WEB_PORT": str(worker.web_port)})  # type: ignore[attr-defined]
    wait_for_log(worker, "call_held_by_budget", count=3)
    alerts = asyncio.run(topic_values(settings, settings.topics.alerts))
    [alert] = [a for a in alerts if a.get("kind") == "budget_spent"]  # one, however many wait
    assert alert["batch_key"] == "calls" and "nothing fails" in alert["message"]

    client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{worker.web_port}/realtime/anthropic",  # type: ignore[attr-defined]
                                 api_key="unused", max_retries=0)
    try:
        client.messages.create(model="claude-haiku-4-5", max_tokens=256,
                               messages=[{"role": "user", "content": "Hello?"}])
        raise AssertionError("a realtime call past the cap was made")
    except anthropic.RateLimitError as refused:  # the provider's own 429, as its SDK reads it
        assert "daily budget" in str(refused.message)

    # Held, never failed: nothing was called, nothing failed; with room, the same items go on.
    assert not asyncio.run(topic_values(settings, settings.topics.results))
    assert not asyncio.run(topic_values(settings, settings.topics.failures))
    workers.kill(worker)
    workers.start(env, TIERLINE_DAILY_BUDGET_USD="1")
    ids = {item["custom_id"] for item in calls}
    done = asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=120))
    assert set(done.results) == ids and not done.failures
