"""Follow the event topics and tell, per custom_id, where each item has got to."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from core.cost import usage_tokens
from streams.settings import Settings

__all__ = ["Watcher", "Progress"]


@dataclass
class Progress:
    """Every event seen so far, summarised."""

    results: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    dead: list[dict[str, Any]] = field(default_factory=list)
    result_at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # Kafka timestamps
    batches: set[str] = field(default_factory=set)
    tokens: Counter[str] = field(default_factory=Counter)

    def final_failures(self) -> set[str]:
        return {cid for cid, events in self.failures.items() if any(e["final"] for e in events)}

    def retried(self) -> set[str]:
        return {cid for cid, events in self.failures.items() if any(not e["final"] for e in events)}

    def ended(self) -> set[str]:
        return set(self.results) | self.final_failures()


class Watcher:
    """Reads results, failures and dead letters from the beginning, without a consumer group."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.progress = Progress()
        self._topics = {settings.topics.named(n): n for n in ("results", "failures", "deadletter")}
        self._consumer = AIOKafkaConsumer(
            *self._topics, bootstrap_servers=settings.bootstrap_servers, group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_bytes=32 << 20,
        )

    async def __aenter__(self) -> Watcher:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_s: float = 0.2) -> int:
        """Read what has arrived; return how many events."""
        batch = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=50_000)
        seen = 0
        p = self.progress
        for tp, records in batch.items():
            kind = self._topics[tp.topic]
            for record in records:
                event = orjson.loads(record.value)
                seen += 1
                if kind == "results":
                    p.results[event["custom_id"]].append(event)
                    p.result_at[event["custom_id"]].append(record.timestamp / 1000)
                    if event["batch_id"]:
                        p.batches.add(event["batch_id"])
                    tokens_in, tokens_out = usage_tokens(event.get("usage"))
                    p.tokens["input"] += tokens_in
                    p.tokens["output"] += tokens_out
                elif kind == "failures":
                    p.failures[event["custom_id"]].append(event)
                else:
                    p.dead.append(event)
        return seen

    async def until(self, done, timeout_s: float, on_poll=None) -> bool:  # type: ignore[no-untyped-def]
        """Poll until ``done(progress)`` holds or the time is up; True if it held."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await self.poll()
            if on_poll is not None:
                on_poll(self.progress)
            if done(self.progress):
                return True
        await asyncio.sleep(0)
        return False
