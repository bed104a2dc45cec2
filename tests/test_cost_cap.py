"""The daily spend cap holds batches back, never drops them, and lets them go when there is room."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

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
    # room for three of its own, and both close their first batches in the same second.
    env = workers.env(TIERLINE_DAILY_BUDGET_USD="0.2", TIERLINE_BATCH_MAX_ITEMS="100", TIERLINE_PARTITIONS="4")
    pair = [workers.start(env), workers.start(env)]
    for proc in pair:
        until_ready(proc.web_port)  # type: ignore[attr-defined]
    time.sleep(3)  # the group settled: each worker has two partitions
    items = make_items(800, "shared-cap", providers=("anthropic",))
    publish(env, items)
    ids = {item["custom_id"] for item in items}
    settings = Settings.from_env(env)
    progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=240))
    assert set(progress.results) == ids and all(submissions(emulator_port)[cid] == 1 for cid in ids)
    assert all(log_events(proc, "batch_submitted") for proc in pair)  # both workers released batches

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
