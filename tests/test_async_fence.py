"""The async tier calls a provider only while the broker has lately confirmed the item's partition, in-process.

A worker cut off from Kafka keeps reaching the provider: a call it makes after the group may have given the
partition to another worker is a call the next owner makes too, at full price. So an item waits, uncalled,
for a fresh confirmation; given up meanwhile, it is left uncalled for the next owner.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from agents.async_queue import AsyncQueue
from streams.kafka.fence import Fence
from streams.settings import Settings
from tests import fakes
from tests.clock import Clock

SETTINGS = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "q."})
A0 = TopicPartition(SETTINGS.topics.async_tier, 0)


def async_item(custom_id: str) -> dict[str, Any]:
    return {"custom_id": custom_id, "provider": "anthropic", "endpoint": None, "metadata": {}, "reprocess": None,
            "tier": "async", "route": ["test"], "arrived_at": 1_800_000_000.0, "source_partition": 0,
            "params": {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}}


class Queue:
    def __init__(self, folder: Path) -> None:
        self.consumer = fakes.FakeConsumer()
        self.runtime = fakes.runtime(SETTINGS, folder)
        self.agent = AsyncQueue(self.runtime, consumer=lambda: self.consumer)  # type: ignore[arg-type]
        self.clock = Clock(100.0)
        self.calls: list[str] = []

    async def start(self) -> Queue:
        await self.agent.on_start()
        assert self.agent._intake is not None
        intake = self.agent._intake
        if intake._confirming is not None:
            intake._confirming.cancel()  # the test moves the fence's clock itself
        intake.fence = Fence(within_s=2.0, lost_after_s=10.0, clock=self.clock)

        async def send(spec: Any, item: Any, request: bytes) -> Any:
            self.calls.append(item.custom_id)
            return await asyncio.sleep(3600)  # the answer is not the point here

        self.agent._send = send  # type: ignore[method-assign]
        await self.consumer.rebalance([A0])
        return self

    async def stop(self) -> None:
        for task in list(self.agent._jobs):
            task.cancel()
        await self.agent.on_stop()


@pytest.fixture
async def queue(tmp_path: Path) -> Any:
    started = await Queue(tmp_path).start()
    yield started
    await started.stop()


async def test_an_item_is_called_only_once_the_broker_confirms_its_partition(queue: Queue) -> None:
    queue.clock.now += 2.5  # the confirmation at the assignment is stale: cut off from the group, maybe
    queue.consumer.put(A0, orjson.dumps(async_item("q-1")), key=b"q-1")
    await queue.agent.step()
    await asyncio.sleep(0.05)
    assert queue.calls == []
    assert queue.agent._intake is not None
    queue.agent._intake.fence.confirm()
    await asyncio.sleep(0.05)
    assert queue.calls == ["q-1"]


async def test_an_item_waiting_for_a_confirmation_is_left_uncalled_when_the_partition_is_given_up(
        queue: Queue) -> None:
    queue.clock.now += 2.5
    queue.consumer.put(A0, orjson.dumps(async_item("q-2")), key=b"q-2")
    await queue.agent.step()
    await asyncio.sleep(0.05)
    assert queue.agent._intake is not None
    await queue.agent._intake.give_up("unconfirmed for longer than the session timeout")
    queue.agent._intake.fence.confirm()
    await asyncio.sleep(0.05)
    assert queue.calls == [] and not queue.agent._jobs  # the next owner calls it, once
