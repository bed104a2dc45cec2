"""What the benchmarks share: counting events on a topic as raw records, and work items of a chosen size."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer

from streams.settings import Settings

__all__ = ["TopicCounter", "padded_items", "emulator_batches"]


class TopicCounter:
    """Counts the records arriving on a topic from its beginning, without decoding them."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                          auto_offset_reset="earliest", fetch_max_bytes=32 << 20)
        self.seen = 0

    async def __aenter__(self) -> TopicCounter:
        await self._consumer.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._consumer.stop()

    async def until(self, total: int, timeout_s: float) -> None:
        """Read until ``total`` records have been seen in all."""
        deadline = time.monotonic() + timeout_s
        while self.seen < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.seen} of {total} records arrived within {timeout_s:.0f} s")
            batch = await self._consumer.getmany(timeout_ms=200, max_records=50_000)
            self.seen += sum(len(records) for records in batch.values())


def padded_items(n: int, prefix: str, item_bytes: int, provider: str = "anthropic") -> list[dict[str, Any]]:
    """``n`` valid items of about ``item_bytes`` each, their prompt padded with words."""
    filler = ("tide pool " * (item_bytes // 10 + 1))[: max(item_bytes - 200, 0)]
    items: list[dict[str, Any]] = []
    for i in range(n):
        messages = [{"role": "user", "content": f"Question {i}: {filler}"}]
        if provider == "anthropic":
            params = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": messages}
            items.append({"custom_id": f"{prefix}-{i:06d}", "provider": "anthropic", "params": params})
        else:
            params = {"model": "gpt-4o-mini", "max_tokens": 64, "messages": messages}
            items.append({"custom_id": f"{prefix}-{i:06d}", "provider": "openai", "endpoint": "/v1/chat/completions",
                          "params": params})
    return items


async def emulator_batches(emulator_port: int) -> list[dict[str, Any]]:
    """Every batch the emulator has accepted."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{emulator_port}/_emulator/batches") as response:
            batches: list[dict[str, Any]] = (await response.json())["batches"]
            return batches
