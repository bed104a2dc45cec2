"""Throughput of the batch tier against raw aiokafka, on the embedded broker and emulator.

One run: (1) raw aiokafka producing N work items to a topic while a consumer
reads them back; (2) the same N items through tierline, from the first publish
to the last result event, with an emulator that ends batches at once. Prints
both rates and their ratio. N defaults to 100,000: the batch tier is for bulk
volume, and a batch's round trip (upload, create, poll, download) is a fixed
cost that small runs do not amortise.

With ``--workers W`` the items go through W workers of one consumer group (each takes its share of
the partitions), as a deployment adds workers to use more cores.

With ``--producer librdkafka`` tierline's items are published by confluent-kafka with librdkafka's default
partitioner (crc32 of the key), as most producers outside the JVM do: about three items in four land away
from their custom_id's home partition (murmur2), and the workers forward each there before anything
else (``streams.kafka.homes``). The default, ``murmur2``, publishes as ``tierline submit`` does: at home.

    .venv/bin/python -m bench.pipeline [N] [--workers W] [--producer librdkafka]   # from the repository's folder
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import Producer

from bench.common import TopicCounter, all_ready, embedded_stack, emulator_batches, worker_on
from streams.local.proc_stats import stats_of
from streams.local.stack import embedded_env
from streams.cli.produce import key_of, publish_lines
from streams.settings import Settings
from streams.kafka.partitioner import partition_of
from streams.kafka.topics import ensure_topics
from streams.local.workload import make_items
from bench.results import save

PROVIDERS = ("anthropic", "openai")


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


def warmup_lines(partitions: int, providers: tuple[str, ...]) -> list[bytes]:
    """An item of each provider on each partition: every worker's group join and first calls through each
    SDK are start-up cost, not throughput."""
    wanted, lines = {(p, name) for p in range(partitions) for name in providers}, []
    for item in make_items(64 * partitions * len(providers), "warmup", providers=providers):
        place = (partition_of(item["custom_id"].encode(), partitions), item["provider"])
        if place in wanted:
            wanted.discard(place)
            lines.append(orjson.dumps(item))
    return lines


def publish_with_librdkafka(settings: Settings, lines: list[bytes]) -> None:
    """Every line keyed by its custom_id, placed by librdkafka's default partitioner."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5, "acks": "all"})
    for line in lines:
        while True:
            try:
                producer.produce(settings.topics.requests, value=line, key=key_of(line))
                break
            except BufferError:  # its queue is full: let it send
                producer.poll(0.05)
        producer.poll(0)
    if left := producer.flush(120):
        raise RuntimeError(f"librdkafka could not deliver {left} records")


async def pipeline_rate(settings: Settings, lines: list[bytes], pids: dict[str, int],
                        emulator_port: int, producer: str = "murmur2") -> tuple[float, dict[str, float], int]:
    """Items per second from the first publish to the last result event, read as raw records, each
    process's CPU microseconds per item over the same span, and the provider batches they made."""
    async with TopicCounter(settings.bootstrap_servers, settings.topics.results) as results:
        warmup = warmup_lines(settings.partitions, PROVIDERS)
        await publish_lines(settings, warmup)
        await results.until(len(warmup), timeout_s=120)
        batches = len(await emulator_batches(emulator_port))
        started, before = time.perf_counter(), {name: stats_of(pid).cpu_s for name, pid in pids.items()}
        if producer == "librdkafka":
            await asyncio.to_thread(publish_with_librdkafka, settings, lines)
        else:
            await publish_lines(settings, lines)
        await results.until(len(warmup) + len(lines), timeout_s=600)
        elapsed = time.perf_counter() - started
        used = {name: (stats_of(pid).cpu_s - before[name]) / len(lines) * 1e6 for name, pid in pids.items()}
        return len(lines) / elapsed, used, len(await emulator_batches(emulator_port)) - batches


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="items (default 100,000)")
    parser.add_argument("--workers", type=int, default=1, help="workers in the consumer group (default 1)")
    parser.add_argument("--producer", choices=("murmur2", "librdkafka"), default="murmur2",
                        help="how items are placed: at their home partition, as tierline submit places them "
                        "(default), or by librdkafka's default partitioner, most forwarded by the workers")
    args = parser.parse_args()
    n = args.n
    # Anthropic and OpenAI: Bedrock's files would go through moto's S3 server, whose speed is not ours.
    lines = [orjson.dumps(item) for item in make_items(n, "bench", providers=PROVIDERS)]
    work = Path(tempfile.mkdtemp(prefix="tierline-bench-"))
    with embedded_stack(work, batch_seconds=0) as stack:  # the emulator idles through the raw run
        envs = [embedded_env(stack.broker_port, stack.emulator_port, work / f"data-{k}",
                             TIERLINE_BATCH_MAX_WAIT_S="0.5", TIERLINE_POLL_INITIAL_S="0.1", TIERLINE_POLL_MAX_S="0.2",
                             TIERLINE_LOG_LEVEL="warning", TIERLINE_BATCH_MAX_ITEMS="10000")
                for k in range(args.workers)]
        settings = Settings.from_env(envs[0])
        raw = asyncio.run(raw_rate(settings.bootstrap_servers, lines))
        asyncio.run(ensure_topics(settings))
        with ExitStack() as workers:
            pids: dict[str, int] = {}
            for k, env in enumerate(envs):
                worker = workers.enter_context(worker_on(env, work / f"worker-{k}.log"))
                pids["worker" if len(envs) == 1 else f"worker {k + 1}"] = worker.pid
            pids |= {"emulator": stack.emulator.pid, "broker": stack.broker.pid,
                     "benchmark (producer, consumer)": os.getpid()}
            asyncio.run(all_ready([int(env["TIERLINE_WEB_PORT"]) for env in envs]))
            rate, cpu_us, batches = asyncio.run(pipeline_rate(settings, lines, pids, stack.emulator_port,
                                                              args.producer))
    size = sum(map(len, lines)) / len(lines)
    print(f"items                          {n:,} (about {size:.0f} bytes each, both providers)")
    print(f"raw aiokafka produce->consume  {raw:,.0f} items/s")
    print(f"tierline publish->last result  {rate:,.0f} items/s ({batches} provider batches, "
          f"{args.workers} worker{'s' if args.workers > 1 else ''}, placed by {args.producer})")
    print(f"ratio                          {rate / raw:.2f} (target 0.35 or better with two workers)")
    print("CPU per item                   " + ", ".join(f"{name} {us:.0f} µs" for name, us in cpu_us.items())
          + f"; {sum(cpu_us.values()) / 1e6 * rate:.2f} of the 2 cores busy")
    placed = {} if args.producer == "murmur2" else {"producer": args.producer}  # the murmur2 series goes on
    save("pipeline", {"ratio": rate / raw, "items_per_s": rate, "raw_items_per_s": raw}, workers=args.workers, items=n,
         **placed)


if __name__ == "__main__":
    main()
