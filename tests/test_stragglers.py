"""A batch that has not ended in time for its items' deadlines gives those items up to the async tier.

The emulator's batches take a minute; the items' deadline is 25 s away, and the async tier's SLA
5 s. At 20 s tierline cancels the batch: the items with a deadline are called through the async
tier at full price, their route saying why; the items without one stay in the batch tier.
"""

from __future__ import annotations

import asyncio
import time
from typing import Iterator

import pytest

from streams.local.workload import make_items
from streams.settings import Settings
from tests.support import Workers, follow, log_events, publish_items, slow_emulator_workers


@pytest.fixture(scope="module")
def slow(broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 60) as pool:
        yield pool


def test_items_due_before_their_batch_ends_are_taken_out_to_the_async_tier(slow: Workers) -> None:
    env = slow.env(TIERLINE_BATCH_TURNAROUND_S="5", TIERLINE_ASYNC_SLA_S="5")
    proc = slow.start(env)
    settings = Settings.from_env(env)
    items = make_items(5, "late", providers=("anthropic",))
    due = items[:3]
    for item in due:
        item["deadline"] = time.time() + 25
    publish_items(settings, items)
    due_ids, others = {i["custom_id"] for i in due}, {i["custom_id"] for i in items[3:]}
    progress = asyncio.run(follow(settings, lambda p: due_ids <= set(p.results) and
                                  others <= set(p.failures) | set(p.results), timeout=120))
    taken_out = set()
    for cid in due_ids:  # each once: from the batch if it ran before the cancel, else from the async tier
        [result] = progress.results[cid]
        if result["tier"] == "async":
            taken_out.add(cid)
            assert result["batch_id"] is None and result["cost_usd"] == result["realtime_usd"]  # full price
            assert any(reason.startswith("straggler: batch") for reason in result["route"])
        else:
            assert result["tier"] == "batch"
    assert taken_out
    for cid in others - set(progress.results):  # no deadline: back to the batch tier, for another batch
        [failure] = progress.failures[cid]
        assert failure["error"]["type"] == "canceled" and failure["retryable"] and not failure["final"]
    assert log_events(proc, "batch_straggling") and not progress.final_failures()
