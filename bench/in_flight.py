"""What a worker costs while many batches sit at the provider, on the embedded broker and emulator.

The normal state of a real deployment: hundreds of batches submitted and hours from ending. The
bench submits B small batches (1,000 by default, of 10 items, both providers) to an emulator that
holds them in progress for a day, a hundred at a time (as batches reach a deployment over hours),
then watches the worker for H seconds (600 by default) with its default polling intervals: each
minute, its CPU use (from /proc), the provider requests it made (the emulator counts them) and its
resident memory. Targets: under 5% of a core once polling has backed off, and a few kilobytes of
memory for each batch in flight, judged on what each batch after the first hundred adds: the first
hundred also pay for the heap that reading and submitting a hundred batches needs, which the
allocators keep (it is printed too).

    .venv/bin/python -m bench.in_flight [B] [H]    # from the repository's folder
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from bench.common import embedded_stack, emulator_batches, worker_on
from streams.cli.produce import publish_lines
from streams.kafka.topics import ensure_topics
from streams.local.proc_stats import stats_of
from streams.local.stack import embedded_env
from streams.local.workload import make_items
from streams.settings import Settings
from bench.results import save

ITEMS_PER_BATCH = 10
TARGET_CPU = 0.05
TARGET_KB_PER_BATCH = 10
IDLE_S = 60
WAVE = 100  # batches published at a time, each wave submitted before the next, as batches come in a deployment


async def provider_requests(emulator_port: int) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{emulator_port}/_emulator/requests") as response:
            total: int = (await response.json())["total"]
            return total


async def submitted(emulator_port: int, batches: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while (count := len(await emulator_batches(emulator_port))) < batches:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {count} of {batches} batches were submitted within {timeout_s:.0f} s")
        await asyncio.sleep(1)


def main() -> None:
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    hold_s = float(sys.argv[2]) if len(sys.argv) > 2 else 600.0
    items = make_items(batches * ITEMS_PER_BATCH, "inflight", providers=("anthropic", "openai"))
    lines = [orjson.dumps(item) for item in items]
    work = Path(tempfile.mkdtemp(prefix="tierline-in-flight-bench-"))
    with embedded_stack(work, batch_seconds=86_400) as stack:  # held in progress for a day
        env = embedded_env(stack.broker_port, stack.emulator_port, work / "data", None,
                           TIERLINE_LOG_LEVEL="warning", TIERLINE_BATCH_MAX_ITEMS=str(ITEMS_PER_BATCH),
                           TIERLINE_BATCH_MAX_WAIT_S="1")
        settings = Settings.from_env(env)
        asyncio.run(ensure_topics(settings))
        emulator_port = stack.emulator_port
        with worker_on(env, work / "worker.log") as worker:
            # A batch per provider first: the SDKs it loads are a fixed cost, not a cost per batch.
            warmup = make_items(2, "warmup", providers=("anthropic", "openai"))
            asyncio.run(publish_lines(settings, [orjson.dumps(item) for item in warmup]))
            asyncio.run(submitted(emulator_port, 2))
            time.sleep(10)
            idle = stats_of(worker.pid)
            time.sleep(IDLE_S)  # the worker's own cost with next to nothing in flight, for comparison
            idle_cpu = (stats_of(worker.pid).cpu_s - idle.cpu_s) / IDLE_S
            first = idle
            for start in range(0, len(lines), WAVE * ITEMS_PER_BATCH):
                asyncio.run(publish_lines(settings, lines[start:start + WAVE * ITEMS_PER_BATCH]))
                asyncio.run(submitted(emulator_port, 2 + min(batches, start // ITEMS_PER_BATCH + WAVE)))
                if start == 0:
                    first = stats_of(worker.pid)
            print(f"{batches:,} batches of {ITEMS_PER_BATCH} items (and 2 of one) in flight at the emulator, "
                  f"taken in {WAVE} at a time; the worker held {idle.rss_mb:.0f} MB before them, "
                  f"{first.rss_mb:.0f} MB after the first {WAVE}")
            print(f"{'minute':>6}  {'CPU % of a core':>15}  {'provider requests':>17}  {'RSS MB':>6}")
            began, requests = stats_of(worker.pid), asyncio.run(provider_requests(emulator_port))
            minutes = max(1, int(hold_s // 60))
            last, halfway, polls = began, began, 0
            for minute in range(1, minutes + 1):
                time.sleep(60)
                now, count = stats_of(worker.pid), asyncio.run(provider_requests(emulator_port))
                print(f"{minute:>6}  {(now.cpu_s - last.cpu_s) / 60 * 100:>15.1f}  {count - requests:>17,}  "
                      f"{now.rss_mb:>6.0f}")
                if minute == minutes // 2:
                    halfway = now
                if minute > minutes // 2:
                    polls += count - requests
                last, requests = now, count
    late_minutes = minutes - minutes // 2
    cpu_share = (last.cpu_s - halfway.cpu_s) / (late_minutes * 60)
    per_batch_kb = (last.rss_mb - idle.rss_mb) * 1024 / batches
    added_kb = (last.rss_mb - first.rss_mb) * 1024 / max(1, batches - WAVE)
    grown_kb = (last.rss_mb - began.rss_mb) * 1024 / batches
    print(f"CPU before them                 {idle_cpu * 100:.1f}% of a core (2 batches in flight, over {IDLE_S} s)")
    cpu_verdict = "met" if cpu_share < TARGET_CPU else "not met"
    memory_verdict = "met" if added_kb < TARGET_KB_PER_BATCH else "not met"
    late = f"CPU, last {late_minutes} minutes"
    print(f"{late:<31} {cpu_share * 100:.1f}% of a core, {polls / late_minutes:,.0f} provider requests a minute "
          f"(target under {TARGET_CPU:.0%}: {cpu_verdict})")
    print(f"memory per batch in flight      {added_kb:.1f} KB each after the first {WAVE} "
          f"(target under {TARGET_KB_PER_BATCH} KB: {memory_verdict}); {per_batch_kb:.1f} KB over idle with "
          f"what taking in the first {WAVE} kept; {grown_kb:+.1f} KB while held")
    save("in_flight", {"cpu_percent": cpu_share * 100, "kb_per_batch": added_kb}, batches=batches)


if __name__ == "__main__":
    main()
