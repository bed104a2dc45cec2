"""How high issue 18's ratios can go on this machine: its benches run with a worker that does nothing.

Each figure is measured against raw aiokafka in the same run, on the embedded broker, as
``bench.pipeline`` and ``bench.replay`` measure tierline:

- **pass-through, publish->last record**: the benchmark publishes N items to a topic while another
  process, standing in for the worker, reads them (``getmany``) and writes each record unchanged onto a
  second topic in record batches (the Publisher's path: no per-record future), and the benchmark counts
  the second topic. No parsing, no provider, no spool: every worker built on aiokafka does at least this
  per item, and tierline's also sends each item to the provider and back. Its ratio to raw
  produce->consume bounds ``bench.pipeline``'s.
- **copy of a full topic**: the same stand-in copies N records already on the topic; against raw
  consume it bounds a replay that publishes every item again (``tierline replay --reprocess NAME``,
  and before 2026-12-04 any replay), before the worker has read a single copy.
- **re-read, each record parsed**: a consumer that parses each record's JSON and looks its custom_id up
  in a set, the least a worker must do to know an item already succeeded (the record's key is its
  producer's to choose, so it cannot stand in for the custom_id); against raw consume it bounds a new
  consumer group's re-read, and ``tierline replay`` of items that all succeeded.

    .venv/bin/python -m bench.ceiling [N]    # from the repository's folder
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.common import TopicCounter, embedded_stack
from streams.local.workload import make_items

PARTITIONS = 4
PIPELINE_TARGET, REPLAY_TARGET = 0.5, 0.7


async def created(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1) for topic in topics])
    await admin.close()


async def publish(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    """As raw produce->consume publishes: one ``send`` a record, keyed, then one wait for all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    pending = [await producer.send(topic, line, key=str(i).encode()) for i, line in enumerate(lines)]
    await asyncio.gather(*pending)
    await producer.stop()


async def counted(bootstrap: str, topic: str, total: int) -> float:
    """When (perf_counter) the ``total``-th record arrived on ``topic``, read from its beginning."""
    async with TopicCounter(bootstrap, topic) as records:
        await records.until(total, timeout_s=600)
    return time.perf_counter()


async def through(bootstrap: str, topic: str, out: str, lines: list[bytes]) -> float:
    """Items per second from the first publish onto ``topic`` to the last copy's arrival on ``out``."""
    started = time.perf_counter()
    arrived = asyncio.create_task(counted(bootstrap, out, len(lines)))
    await publish(bootstrap, topic, lines)
    return len(lines) / (await arrived - started)


async def copied(bootstrap: str, out: str, total: int) -> float:
    """Records per second until ``total`` copies have arrived on ``out`` (the copier started just before)."""
    started = time.perf_counter()
    return total / (await counted(bootstrap, out, total) - started)


async def reread(bootstrap: str, topic: str, total: int, parse: bool) -> float:
    """Records per second of a consumer reading ``topic`` from its beginning, parsing each record's JSON
    and looking its custom_id up in a set if ``parse``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                fetch_max_bytes=32 << 20)
    await consumer.start()
    done: set[str] = set()
    seen, skipped, started = 0, 0, time.perf_counter()
    while seen < total:
        batch = await consumer.getmany(timeout_ms=200, max_records=50_000)
        for records in batch.values():
            seen += len(records)
            if parse:
                for record in records:
                    skipped += orjson.loads(record.value)["custom_id"] in done
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return total / elapsed


async def copy(bootstrap: str, topic: str, out: str, total: int) -> float:
    """The stand-in worker: every record of ``topic`` written unchanged onto ``out``, partition for
    partition, in one record batch per partition and read; returns the CPU seconds that took."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                fetch_max_bytes=32 << 20)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=1 << 20,
                                max_request_size=8 << 20)
    await consumer.start()
    await producer.start()
    seen, cpu_s = 0, time.process_time()
    while seen < total:
        sent = []
        for tp, records in (await consumer.getmany(timeout_ms=200, max_records=50_000)).items():
            seen += len(records)
            batch = producer.create_batch()
            for record in records:
                if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                    sent.append(await producer.send_batch(batch, out, partition=tp.partition))
                    batch = producer.create_batch()
                    batch.append(key=record.key, value=record.value, timestamp=None)
            sent.append(await producer.send_batch(batch, out, partition=tp.partition))
        await asyncio.gather(*sent)
    cpu_s = time.process_time() - cpu_s
    await producer.stop()
    await consumer.stop()
    return cpu_s


def copier(bootstrap: str, topic: str, out: str, total: int) -> subprocess.Popen[bytes]:
    """The stand-in worker in a process of its own, as the worker is; it prints its CPU seconds at the end."""
    argv = [sys.executable, "-m", "bench.ceiling", "--copy", bootstrap, topic, out, str(total)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE)


def cpu_of(worker: subprocess.Popen[bytes]) -> float:
    out, _ = worker.communicate()
    return float(out)


def main() -> None:
    if sys.argv[1:2] == ["--copy"]:
        bootstrap, topic, out, total = sys.argv[2:6]
        print(asyncio.run(copy(bootstrap, topic, out, int(total))))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    lines = [orjson.dumps(item) for item in make_items(n, "ceiling", providers=("anthropic", "openai"))]
    work = Path(tempfile.mkdtemp(prefix="tierline-ceiling-bench-"))
    with embedded_stack(work, batch_seconds=0) as stack:
        bootstrap = f"127.0.0.1:{stack.broker_port}"
        asyncio.run(created(bootstrap, "raw", "requests", "results", "copies"))
        raw = asyncio.run(through(bootstrap, "raw", "raw", lines))  # produce->consume, as bench.pipeline's raw
        worker = copier(bootstrap, "requests", "results", n)
        time.sleep(2)  # its start-up (imports, metadata) is not throughput
        passed = asyncio.run(through(bootstrap, "requests", "results", lines))
        cpu_us = cpu_of(worker) / n * 1e6
        consume = asyncio.run(reread(bootstrap, "requests", n, parse=False))
        parsed = asyncio.run(reread(bootstrap, "requests", n, parse=True))
        worker = copier(bootstrap, "requests", "copies", n)
        copy_rate = asyncio.run(copied(bootstrap, "copies", n))
        cpu_of(worker)
    print(f"items                            {n:,} (about {sum(map(len, lines)) / n:.0f} bytes each)")
    print(f"raw aiokafka produce->consume    {raw:,.0f} items/s")
    print(f"pass-through, publish->last      {passed:,.0f} items/s, ratio {passed / raw:.2f} "
          f"(bench.pipeline's target: {PIPELINE_TARGET}); the stand-in worker {cpu_us:.0f} µs an item")
    print(f"raw aiokafka consume             {consume:,.0f} records/s")
    print(f"copy of a full topic             {copy_rate:,.0f} records/s, ratio {copy_rate / consume:.2f} "
          f"(a replay publishing every item again; target for tierline replay: {REPLAY_TARGET})")
    print(f"re-read, each record parsed      {parsed:,.0f} records/s, ratio {parsed / consume:.2f} "
          f"(a new group's re-read target: {REPLAY_TARGET})")


if __name__ == "__main__":
    main()
