"""A batch that found the provider's queue full goes again whole, later, as a new batch: in-process."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from core.limits import BatchGroup
from streams.refusals import requeue
from streams.settings import Settings
from streams.state.batch_log import BatchJob
from tests import fakes

SETTINGS = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "q."})


async def a_batch(runtime, n: int = 3) -> BatchJob:  # type: ignore[no-untyped-def]
    for i in range(n):
        runtime.spool.append("tl-q", orjson.dumps({"custom_id": f"q-{i}", "body": {}}),
                             orjson.dumps({"custom_id": f"q-{i}", "attempt": 1, "source_partition": 1, "metadata": {}}))
    spooled = runtime.spool.finish("tl-q", BatchGroup("openai", "/v1/chat/completions", "gpt-4o-mini"), n, 60)
    record = await runtime.batch_log.intent(spooled, 1, 0.25, 7)
    return BatchJob(record, spooled, 0)


async def test_the_same_items_go_again_later_in_a_new_batch_and_none_fails(tmp_path: Path) -> None:
    runtime = fakes.runtime(SETTINGS, tmp_path)
    job, again = await a_batch(runtime), []
    await requeue(runtime, job, "token_limit_exceeded: Enqueued token limit reached", again.append)
    [new] = again
    assert new.record.replaces == job.record.batch_key and new.record.requeues == 1
    assert (new.record.item_count, new.record.home, new.record.estimated_usd) == (3, 1, 0.25)
    assert new.spooled.items_path.read_bytes().count(b"\n") == 3
    assert 4 < new.not_before - time.time() <= 5  # the first wait: 5 s
    closed = [r for r in runtime.batch_log.records() if r.batch_key == job.record.batch_key]
    assert closed[-1].state == "replaced" and closed[-1].failed == 0
    assert runtime.publisher.on(SETTINGS.topics.failures) == []
    assert runtime.ownership.owns(new.record.batch_key) and not runtime.ownership.owns(job.record.batch_key)


async def test_the_wait_doubles_and_an_operator_hears_of_it_from_the_third_time(tmp_path: Path) -> None:
    runtime = fakes.runtime(SETTINGS, tmp_path)
    job, waits = await a_batch(runtime), []
    for _ in range(3):
        again: list[BatchJob] = []
        await requeue(runtime, job, "token_limit_exceeded", again.append)
        [job] = again
        waits.append(round(job.not_before - time.time()))
    assert waits == [5, 10, 20] and job.record.requeues == 3
    [alert] = runtime.publisher.on(SETTINGS.topics.alerts)
    assert alert["kind"] == "queue_full" and "3 times" in alert["message"]
