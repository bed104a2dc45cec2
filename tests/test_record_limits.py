"""Every record tierline writes fits the largest a topic takes (TIERLINE_KAFKA_MAX_RECORD_BYTES), tested
with the limit set low: a batch's items go in as many chunks as needed, a request too large to carry is a
dead letter, an answer too large to deliver is that item's failure, and nothing stops a partition.

The fake publisher refuses any record past the limit, as the real one does, so a record too large
anywhere here fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from agents.window_items import WindowItems
from core.limits import BatchGroup
from core.outcomes import ItemContext, ItemOutcome
from streams.emit import Emitter
from streams.settings import Settings
from tests import fakes
from tests.fakes import result_file

LIMIT = 16_384
SETTINGS = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "r.", "TIERLINE_PARTITIONS": "1",
                              "TIERLINE_KAFKA_MAX_RECORD_BYTES": str(LIMIT),
                              "TIERLINE_BATCH_MAX_ITEMS": "100"})
R0 = TopicPartition(SETTINGS.topics.requests, 0)


def item(n: int, text_bytes: int = 300) -> dict[str, Any]:
    return {"custom_id": f"c-{n:04d}", "provider": "anthropic", "metadata": {"n": n, "note": "m" * 200},
            "params": {"model": "claude-haiku-4-5", "max_tokens": 16,
                       "messages": [{"role": "user", "content": "y" * text_bytes}]}}


async def test_a_batch_larger_than_a_record_is_written_in_chunks_that_each_fit(tmp_path: Path) -> None:
    runtime = fakes.runtime(SETTINGS, tmp_path)
    consumer = fakes.FakeConsumer()
    jobs: list[Any] = []
    agent = WindowItems(runtime, jobs.append, consumer=lambda: consumer)  # type: ignore[arg-type]
    await agent.on_start()
    await consumer.rebalance([TopicPartition(SETTINGS.topics.requests, p) for p in range(SETTINGS.partitions)])
    consumer.put_json(R0, [item(n) for n in range(100)])  # about 60 KB: four records' worth
    await agent.step()
    while agent._closing:
        await agent._closing.pop()
    [job] = jobs
    chunks = [m for m in runtime.publisher.sent if m.topic == SETTINGS.topics.batch_items]
    assert len(chunks) == job.record.chunks >= 4
    assert all(len(m.value) + len(m.key) <= LIMIT for m in chunks)
    ids = [ctx["custom_id"] for m in chunks for ctx in orjson.loads(m.value)["contexts"]]
    assert ids == [item(n)["custom_id"] for n in range(100)]  # every item once, in order


async def test_a_request_too_large_to_carry_is_a_dead_letter_that_fits(tmp_path: Path) -> None:
    runtime = fakes.runtime(SETTINGS, tmp_path)
    consumer = fakes.FakeConsumer()
    agent = WindowItems(runtime, lambda job: None, consumer=lambda: consumer)
    await agent.on_start()
    await consumer.rebalance([TopicPartition(SETTINGS.topics.requests, p) for p in range(SETTINGS.partitions)])
    consumer.put_json(R0, [item(0, text_bytes=40_000), item(1)])
    await agent.step()
    [letter] = runtime.publisher.on(SETTINGS.topics.deadletter)
    assert letter["reason"] == "item_too_large" and "TIERLINE_KAFKA_MAX_RECORD_BYTES" in letter["message"]
    assert letter["value_truncated"] is True
    assert [b.count for b in agent.window.open_batches()] == [1]  # the item after it goes on




async def test_an_answer_too_large_to_deliver_fails_its_item_and_no_other(tmp_path: Path) -> None:
    runtime = fakes.runtime(SETTINGS, tmp_path)
    spool = runtime.spool
    ids = [f"long-id-{n:04d}-" + "x" * 200 for n in range(120)]  # as OpenAI's custom_ids may be
    for custom_id in ids:
        spool.append("tl-b", orjson.dumps({"custom_id": custom_id, "params": {}}),
                     orjson.dumps(ItemContext(custom_id, 1, 0, {}, None).encode()))
    spooled = spool.finish("tl-b", BatchGroup("anthropic"), len(ids), 100)
    answer = {"model": "claude-haiku-4-5", "content": [{"type": "text", "text": "ok"}]}
    huge = {**answer, "content": [{"type": "text", "text": "z" * 20_000}]}
    usage = {"input_tokens": 10, "output_tokens": 5}
    tally = await Emitter(runtime).settle_batch(spooled, "msgbatch_1", *result_file(
        *(ItemOutcome(cid, huge if n == 7 else answer, usage, None) for n, cid in enumerate(ids))))
    results = {doc["custom_id"] for doc in runtime.publisher.on(SETTINGS.topics.results)}
    [failure] = runtime.publisher.on(SETTINGS.topics.failures)
    assert results == set(ids) - {ids[7]} and tally.succeeded == 119
    assert failure["custom_id"] == ids[7] and failure["error"]["type"] == "result_too_large" and failure["final"]
    # 119 long ids do not fit one ledger record: the successes are recorded in several, each fitting.
    ledger = [m for m in runtime.publisher.sent if m.topic == SETTINGS.topics.ledger]
    assert len(ledger) > 1
    assert sorted(cid for m in ledger for cid in orjson.loads(m.value)["succeeded"]) == sorted(results)


def test_a_limit_below_what_tierline_needs_to_work_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="TIERLINE_KAFKA_MAX_RECORD_BYTES must be at least 16384"):
        Settings.from_env({"TIERLINE_KAFKA_MAX_RECORD_BYTES": "1000"})
