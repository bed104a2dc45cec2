"""Bulk publishing: many events per call, one wait for all their acknowledgements.

aiokafka's ``send`` only appends to its batch accumulator, so emitting N events
costs N appends and one flush, never N round trips.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

import orjson
from aiokafka import AIOKafkaProducer

__all__ = ["Publisher", "Message"]

Message = tuple[str, str, Any, int | None]  # topic, key, value (bytes or a record), partition


class Publisher:
    """A shared producer for every event tierline emits."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap = bootstrap_servers
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds to the running event loop.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            linger_ms=5,
            max_batch_size=1 << 20,
            max_request_size=8 << 20,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, messages: Iterable[Message]) -> int:
        """Send every message and wait until the broker has acknowledged them all."""
        assert self._producer is not None, "Publisher.start() first"
        send = self._producer.send
        pending = []
        for topic, key, value, partition in messages:
            data = value if isinstance(value, bytes) else orjson.dumps(value)
            pending.append(await send(topic, data, key=key.encode(), partition=partition))
        if pending:
            await asyncio.gather(*pending)
        return len(pending)
