"""The worker's memory while one large batch goes through it, on the embedded broker and emulator.

For each size, a fresh worker: its resident set once started and idle, then one Anthropic batch
of N items of about 4 KB each (10,000 and 50,000 by default: about 40 MB and 200 MB of input)
from the first publish to the last result event; prints the idle figure, the peak (``VmHWM``,
the kernel's high-water mark) and the resident set left afterwards. The target: a peak flat in
batch size and under 150 MB.

    .venv/bin/python -m bench.memory [N ...]    # from the repository's folder
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.common import Stack, TopicCounter, embedded_stack, padded_items, worker_on
from streams.cli.produce import publish_lines
from streams.kafka.topics import ensure_topics
from streams.local.proc_stats import stats_of
from streams.local.stack import embedded_env
from streams.settings import Settings
from bench.results import save

ITEM_BYTES = 4096
TARGET_MB = 150


async def through(settings: Settings, lines: list[bytes]) -> None:
    async with TopicCounter(settings.bootstrap_servers, settings.topics.results) as results:
        await publish_lines(settings, lines)
        await results.until(len(lines), timeout_s=900)


def one_batch(work: Path, stack: Stack, n: int) -> tuple[float, float, float, float]:
    """Idle, peak and after figures in MiB, and the seconds the batch took."""
    env = embedded_env(stack.broker_port, stack.emulator_port, work / f"data-{n}", TIERLINE_APP_ID=f"memory{n}",
                       TIERLINE_TOPIC_PREFIX=f"memory{n}.", TIERLINE_LOG_LEVEL="warning",
                       TIERLINE_BATCH_MAX_ITEMS=str(n), TIERLINE_BATCH_MAX_WAIT_S="300",
                       TIERLINE_POLL_INITIAL_S="0.2", TIERLINE_POLL_MAX_S="0.5")
    settings = Settings.from_env(env)
    asyncio.run(ensure_topics(settings))
    lines = [orjson.dumps(item) for item in padded_items(n, f"memory{n}", ITEM_BYTES)]
    with worker_on(env, work / f"worker-{n}.log") as worker:
        time.sleep(10)  # its partitions assigned, start-up's garbage collected
        idle = stats_of(worker.pid).rss_mb
        started = time.perf_counter()
        asyncio.run(through(settings, lines))
        took = time.perf_counter() - started
        stats = stats_of(worker.pid)
    return idle, stats.peak_rss_mb, stats.rss_mb, took


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [10_000, 50_000]
    work = Path(tempfile.mkdtemp(prefix="tierline-memory-bench-"))
    with embedded_stack(work, batch_seconds=0) as stack:
        print(f"one Anthropic batch of N items of about {ITEM_BYTES:,} bytes each, a fresh worker for each N")
        print(f"{'N':>8}  {'input MB':>8}  {'idle MB':>8}  {'peak MB':>8}  {'after MB':>8}  {'seconds':>7}")
        peaks = []
        for n in sizes:
            idle, peak, after, took = one_batch(work, stack, n)
            peaks.append(peak)
            print(f"{n:>8,}  {n * ITEM_BYTES / 1e6:>8.0f}  {idle:>8.0f}  {peak:>8.0f}  {after:>8.0f}  {took:>7.1f}")
    verdict = "met" if max(peaks) < TARGET_MB else "not met"
    print(f"target: peak under {TARGET_MB} MB and flat in batch size ({verdict}: "
          f"{max(peaks) - min(peaks):.0f} MB between the smallest and the largest)")
    save("memory", {"peak_mb": max(peaks), "peak_spread_mb": max(peaks) - min(peaks)}, sizes=",".join(map(str, sizes)))


if __name__ == "__main__":
    main()
