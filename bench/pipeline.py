"""Throughput of the batch tier against raw aiokafka, on the embedded broker and emulator.

One run: (1) raw aiokafka producing N work items to a topic while a consumer
reads them back; (2) the same N items through tierline, from the first publish
to the last result event, with an emulator that ends batches at once. Prints
both rates and their ratio.

    .venv/bin/python bench/pipeline.py [N]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.local import broker_argv, embedded_env, free_port, running, tierline_argv, wait_for_port
from streams.produce import publish_lines
from streams.settings import Settings
from streams.topics import ensure_topics
from streams.watch import Watcher
from streams.workload import make_items


async def raw_rate(bootstrap: str, lines: list[bytes]) -> float:
    topic = "bench.raw"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    await admin.close()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", fetch_max_bytes=32 << 20)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=1 << 20)
    await producer.start()

    async def consume() -> None:
        seen = 0
        while seen < len(lines):
            batch = await consumer.getmany(timeout_ms=200, max_records=50_000)
            seen += sum(len(records) for records in batch.values())

    started = time.perf_counter()
    reader = asyncio.create_task(consume())
    pending = [await producer.send(topic, line, key=str(i).encode()) for i, line in enumerate(lines)]
    await asyncio.gather(*pending)
    await reader
    elapsed = time.perf_counter() - started
    await producer.stop()
    await consumer.stop()
    return len(lines) / elapsed


async def pipeline_rate(settings: Settings, lines: list[bytes]) -> tuple[float, int]:
    async with Watcher(settings) as watcher:
        # One warm-up item first: the worker's consumer group join is not throughput.
        await publish_lines(settings, [orjson.dumps(make_items(1, "warmup")[0])])
        assert await watcher.until(lambda p: len(p.results) >= 1, timeout_s=120), "worker never ready"
        lines_done = len(watcher.progress.results)
        started = time.perf_counter()
        await publish_lines(settings, lines)
        target = lines_done + len(lines)
        assert await watcher.until(lambda p: len(p.results) >= target, timeout_s=600), "pipeline timed out"
        elapsed = time.perf_counter() - started
        return len(lines) / elapsed, len(watcher.progress.batches) - 1


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    lines = [orjson.dumps(item) for item in make_items(n, "bench")]
    work = Path(tempfile.mkdtemp(prefix="tierline-bench-"))
    broker_port, emulator_port = free_port(), free_port()
    env = embedded_env(broker_port, emulator_port, work / "data", TIERLINE_BATCH_MAX_WAIT_S="0.5",
                       TIERLINE_POLL_INITIAL_S="0.1", TIERLINE_POLL_MAX_S="0.2", TIERLINE_LOG_LEVEL="warning",
                       TIERLINE_BATCH_MAX_ITEMS="10000")
    settings = Settings.from_env(env)
    with running(broker_argv(broker_port), broker_port, log=work / "broker.log"):
        raw = asyncio.run(raw_rate(settings.bootstrap_servers, lines))
        emulator = tierline_argv("emulator", "--port", str(emulator_port), "--batch-seconds", "0")
        with running(emulator, emulator_port, log=work / "emulator.log"):
            asyncio.run(ensure_topics(settings))
            with running(tierline_argv("worker"), env=env, log=work / "worker.log") as worker:
                wait_for_port(int(env["TIERLINE_WEB_PORT"]), 60, worker)
                rate, batches = asyncio.run(pipeline_rate(settings, lines))
    size = sum(map(len, lines)) / len(lines)
    print(f"items                          {n:,} (about {size:.0f} bytes each, both providers)")
    print(f"raw aiokafka produce->consume  {raw:,.0f} items/s")
    print(f"tierline publish->last result  {rate:,.0f} items/s ({batches} provider batches)")
    print(f"ratio                          {rate / raw:.2f}")


if __name__ == "__main__":
    main()
