"""The daily spend cap holds batches back, never drops them, and lets them go when there is room."""

from __future__ import annotations

import asyncio

from streams.settings import Settings
from streams.local.workload import make_items
from tests.support import Workers, follow, log_events, publish, submissions, wait_for_log


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
