"""The window agent's own cost per item, in-process: no broker, no provider, nothing else on the cores.

The agent (``WindowItems``) reads N requests of about 240 bytes (Anthropic and OpenAI) from a fake
consumer in rounds, as it reads Kafka's, and places them in batches of 10,000; then reads them again
with every custom_id already succeeded, as a replay or a new consumer group does. Prints the
microseconds per item of each, the best of three runs: the figure to watch when touching the intake's
hot path, steadier than the end-to-end benches on a shared machine.

    .venv/bin/python -m bench.intake [N]    # from the repository's folder
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.window_items import WindowItems
from streams.gc_tuning import tune_gc
from streams.local.workload import make_items
from streams.logs import configure_logging
from streams.runtime import Runtime
from streams.settings import Settings
from tests import fakes
from tests.clock import Clock
from bench.results import save

SETTINGS = Settings.from_env({"TIERLINE_BATCH_MAX_ITEMS": "10000", "TIERLINE_BATCH_MAX_WAIT_S": "60",
                              "TIERLINE_LOG_LEVEL": "warning"})


async def per_item_us(n: int, succeeded: bool) -> float:
    """Microseconds of the agent's rounds per item, for ``n`` new items or ``n`` already succeeded."""
    requests = [TopicPartition(SETTINGS.topics.requests, p) for p in range(SETTINGS.partitions)]
    retry = [TopicPartition(SETTINGS.topics.retry, p) for p in range(SETTINGS.partitions)]
    items = make_items(n, "intake", providers=("anthropic", "openai"))
    with tempfile.TemporaryDirectory(prefix="tierline-intake-bench-") as folder:
        clock = Clock(1_800_000_000.0)
        runtime = fakes.runtime(SETTINGS, Path(folder), clock=clock)  # the tests' in-memory runtime
        consumer = fakes.FakeConsumer()
        agent = WindowItems(cast(Runtime, runtime), lambda job: None, clock=clock,
                            consumer=lambda: cast(AIOKafkaConsumer, consumer))
        await agent.on_start()
        await consumer.rebalance(requests + retry)
        if succeeded:
            runtime.ledger.record("bench", 0, "", [item["custom_id"] for item in items])  # noted as succeeded
        for k, item in enumerate(items):
            consumer.put(requests[k % len(requests)], orjson.dumps(item), key=item["custom_id"].encode())
        started = time.perf_counter()
        while any(consumer._position[tp] < len(consumer.logs[tp]) for tp in requests):
            await agent.step()
        elapsed = time.perf_counter() - started
        while agent._closing:
            await asyncio.gather(*agent._closing)
        await agent.on_stop()
    return elapsed / n * 1e6


async def main(n: int) -> None:
    configure_logging("warning", "json")
    await per_item_us(100, succeeded=False)  # the SDKs' request types are imported at the first item
    tune_gc()  # as the worker does
    placed = min([await per_item_us(n, succeeded=False) for _ in range(3)])
    skipped = min([await per_item_us(n, succeeded=True) for _ in range(3)])
    print(f"items                 {n:,} of about 240 bytes (Anthropic and OpenAI), best of 3 runs")
    print(f"taken in and placed   {placed:.1f} µs an item (parse, validation, routing, window, spool)")
    print(f"skipped (succeeded)   {skipped:.1f} µs an item (its head read, ledger look-up)")
    save("intake", {"placed_us": placed, "skipped_us": skipped}, items=n)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40_000))
