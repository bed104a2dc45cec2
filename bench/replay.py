"""Re-reading a fully processed ``tierline.requests``, against raw consume, on the embedded broker and emulator.

One run: N items (100,000 by default, both providers) go through a worker until each has its result;
then, each against a raw aiokafka consumer reading the same records in the same run:

- ``tierline replay`` reads the ledger of successes and the topic, and publishes again what did not
  succeed (here nothing): from its start to its end, connections included;
- a new consumer group (a second worker, another ``TIERLINE_APP_ID``) reads the topic from its
  beginning and skips every item: from its first skip to its last.

Both must submit nothing: the emulator's count of batches is printed before and after.

The raw consumer runs with Python's garbage-collector settings, as a plain consumer does; the replay
with the settings ``tierline replay`` gives itself (``streams.gc_tuning``, as the worker does). The raw
consumer is then measured once more with those settings too, and the replay's ratio to it printed
beside: what the replay's own work costs, like for like.

    .venv/bin/python -m bench.replay [N]    # from the repository's folder
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from bench.common import TopicCounter, embedded_stack, emulator_batches, worker_on
from streams.cli.produce import publish_lines
from streams.cli.replay import replay
from streams.gc_tuning import tune_gc
from streams.kafka.topics import ensure_topics
from streams.local.stack import embedded_env
from streams.local.workload import make_items
from streams.settings import Settings
from bench.results import save

TARGET = 0.7
SKIPPED = b"tierline_duplicate_skipped_total "


async def raw_consume(settings: Settings, total: int) -> float:
    """Records per second of a plain consumer reading ``tierline.requests`` from its beginning, its
    connection included as the replay's are."""
    started = time.perf_counter()
    async with TopicCounter(settings.bootstrap_servers, settings.topics.requests) as requests:
        await requests.until(total, timeout_s=600)
        return requests.seen / (time.perf_counter() - started)


async def skipped(session: aiohttp.ClientSession, web_port: int) -> int:
    """The worker's count of items skipped as already succeeded, from its /metrics page."""
    async with session.get(f"http://127.0.0.1:{web_port}/metrics") as response:
        for line in (await response.read()).splitlines():
            if line.startswith(SKIPPED):
                return int(float(line[len(SKIPPED):]))
    return 0


async def skips_until(web_port: int, total: int, fresh: bool = False, timeout_s: float = 600) -> tuple[float, float]:
    """About when the worker skipped its first item from now, and when its ``total``-th (perf_counter
    seconds, to the 50 ms of polling its metrics); ``fresh``: counted from the worker's start."""
    first, deadline = None, time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        before = 0 if fresh else await skipped(session, web_port)
        polled = time.perf_counter()
        while (count := await skipped(session, web_port) - before) < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker skipped only {count} of {total} items within {timeout_s:.0f} s")
            if count and first is None:
                first = polled  # it began after the poll before
            polled = time.perf_counter()
            await asyncio.sleep(0.05)
    return (polled if first is None else first), time.perf_counter()


async def processed(settings: Settings, lines: list[bytes]) -> None:
    async with TopicCounter(settings.bootstrap_servers, settings.topics.results) as results:
        await publish_lines(settings, lines)
        await results.until(len(lines), timeout_s=900)


async def replayed(settings: Settings, n: int) -> float:
    """Items per second of ``tierline replay`` over a topic whose items all succeeded."""
    started = time.perf_counter()
    counts = await replay(settings)
    elapsed = time.perf_counter() - started
    assert (counts.published, counts.succeeded) == (0, n), f"replay published {counts.published} of {n}"
    return n / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    lines = [orjson.dumps(item) for item in make_items(n, "replay", providers=("anthropic", "openai"))]
    work = Path(tempfile.mkdtemp(prefix="tierline-replay-bench-"))
    quick = {"TIERLINE_BATCH_MAX_WAIT_S": "0.5", "TIERLINE_POLL_INITIAL_S": "0.1", "TIERLINE_POLL_MAX_S": "0.2",
             "TIERLINE_LOG_LEVEL": "warning", "TIERLINE_BATCH_MAX_ITEMS": "10000"}
    with embedded_stack(work, batch_seconds=0) as stack:
        env = embedded_env(stack.broker_port, stack.emulator_port, work / "data", None, **quick)
        settings = Settings.from_env(env)
        asyncio.run(ensure_topics(settings))
        with worker_on(env, work / "worker.log"):
            asyncio.run(processed(settings, lines))
            batches = len(asyncio.run(emulator_batches(stack.emulator_port)))
            raw = asyncio.run(raw_consume(settings, n))
            tune_gc()  # as `tierline replay` does
            raw_tuned = asyncio.run(raw_consume(settings, n))
            replay_rate = asyncio.run(replayed(settings, n))
        again = embedded_env(stack.broker_port, stack.emulator_port, work / "data-again", None,
                             TIERLINE_APP_ID="tierline-again", **quick)
        with worker_on(again, work / "worker-again.log"):
            first, last = asyncio.run(skips_until(int(again["TIERLINE_WEB_PORT"]), n, fresh=True))
        group_rate = n / (last - first)
        batches_after = len(asyncio.run(emulator_batches(stack.emulator_port)))
    print(f"tierline.requests              {n:,} items processed ({batches} provider batches)")
    print(f"raw aiokafka consume           {raw:,.0f} records/s (with tierline's GC settings {raw_tuned:,.0f})")
    print(f"tierline replay, all succeeded {replay_rate:,.0f} items/s, ratio {replay_rate / raw:.2f} "
          f"(target {TARGET} or better; {replay_rate / raw_tuned:.2f} like for like)")
    print(f"new consumer group, re-read    {group_rate:,.0f} items/s, ratio {group_rate / raw:.2f} "
          f"(target {TARGET} or better)")
    print(f"provider batches submitted     {batches_after - batches} by the replay and the re-read (target 0)")
    save("replay", {"replay_ratio": replay_rate / raw, "group_ratio": group_rate / raw,
                    "batches_submitted": batches_after - batches}, items=n)


if __name__ == "__main__":
    main()
