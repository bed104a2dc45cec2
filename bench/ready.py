"""How soon a worker is ready, and what it holds, with a deployment's history of successes behind it.

N successes are written straight into the ledger topic of a deployment of 8 partitions, as workers
record them (``Ledger.record``: 5,000 custom_ids a record). Then W workers are started on it together, and
started again once they are all ready, each on the data folder it had (a restart). For each, the slowest
worker's seconds from its start to ``/readyz`` answering 200 and to its ledger read, the ledger records one
read (5,000 successes each), and the largest resident set then. On the embedded broker joining the group
takes about 8 s of the first figure whatever the history; the ledger's read is what grows with it. Issue
41's target: after the first start, ready within 5 s whatever the history, each worker holding about 1/W
of the ledger.

    .venv/bin/python -m bench.ready [--successes 1000000 10000000] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import aiohttp

from bench.common import embedded_stack
from bench.results import save
from schemas import RunKey
from streams.kafka.publish import Publisher
from streams.kafka.topics import ensure_topics
from streams.local.proc_stats import stats_of
from streams.local.stack import embedded_env, running, tierline_argv
from streams.settings import Settings
from streams.state.ledger import Ledger

PARTITIONS = 8
CHUNK = 5_000  # custom_ids a ledger record
AT_ONCE = 20  # records a publish


async def fill(settings: Settings, successes: int) -> float:
    """Write ``successes`` into the ledger topic as workers record them; the seconds it took."""
    started = time.monotonic()
    publisher = Publisher(settings.kafka)
    await publisher.start()
    try:
        messages = []
        for chunk in range(-(-successes // CHUNK)):
            ids: list[RunKey] = [f"ready-{chunk:07d}-{k:04d}" for k in range(min(CHUNK, successes - chunk * CHUNK))]
            messages.append(Ledger(settings.kafka, settings.topics.ledger).record("tl-bench", chunk, "batch_1", ids))
            if len(messages) == AT_ONCE:
                await publisher.publish(messages)
                messages = []
        await publisher.publish(messages)
    finally:
        await publisher.stop()
    return time.monotonic() - started


async def until_ready(ports: list[int], timeout_s: float) -> list[float]:
    """Each worker's seconds until its ``/readyz`` first answered 200, from now."""
    started, ready = time.monotonic(), [0.0] * len(ports)
    async with aiohttp.ClientSession() as session:
        while not all(ready):
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"not every worker was ready within {timeout_s:.0f} s")
            for n, port in enumerate(ports):
                if not ready[n]:
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                            if response.status == 200:
                                ready[n] = time.monotonic() - started
                    except aiohttp.ClientError:
                        pass  # its web server is not up yet
            await asyncio.sleep(0.1)
    return ready


def ledger_read(log: Path) -> tuple[int, float]:
    """The ledger records the worker's last start read, and the seconds from its start until they were read (its
    ``worker_starting`` and ``ledger_loaded`` lines)."""
    events = [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    started = [e for e in events if e.get("event") == "worker_starting"][-1]
    loaded = [e for e in events if e.get("event") == "ledger_loaded"][-1]
    took = datetime.fromisoformat(loaded["timestamp"]) - datetime.fromisoformat(started["timestamp"])
    return int(loaded["records"]), took.total_seconds()


def start_workers(work: Path, envs: list[dict[str, str]], timeout_s: float) -> tuple[float, float, int, float]:
    """Start the workers together and wait until all are ready: the slowest's seconds, the slowest's to read the
    ledger, the most ledger records one read, and the largest resident set (MiB) once all were ready."""
    work.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        logs = [work / f"worker-{n}.log" for n in range(len(envs))]
        workers = [stack.enter_context(running(tierline_argv("worker"), env=env, log=log))
                   for env, log in zip(envs, logs, strict=True)]
        ready = asyncio.run(until_ready([int(env["TIERLINE_WEB_PORT"]) for env in envs], timeout_s))
        rss = max(stats_of(worker.pid).rss_mb for worker in workers)
    ledger = [ledger_read(log) for log in logs]
    return max(ready), max(took for _, took in ledger), max(records for records, _ in ledger), rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--successes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--timeout", type=float, default=1_800, help="seconds a start may take")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tierline-ready-bench-"))
    print(f"{'successes':>12} {'workers':>7} {'start':>6} {'ready s':>8} {'ledger s':>9} {'records read':>13} "
          f"{'RSS MiB':>8}")
    with embedded_stack(work, 2.0) as stack:
        for successes in args.successes:
            prefix = f"ready{successes}"
            base = embedded_env(stack.broker_port, stack.emulator_port, work / prefix, TIERLINE_APP_ID=prefix,
                                TIERLINE_TOPIC_PREFIX=f"{prefix}.", TIERLINE_PARTITIONS=str(PARTITIONS))
            settings = Settings.from_env(base)
            asyncio.run(ensure_topics(settings))
            filled = asyncio.run(fill(settings, successes))
            print(f"{successes:>12,} written to the ledger in {filled:.1f} s")
            for count in args.workers:
                envs = [embedded_env(stack.broker_port, stack.emulator_port, work / prefix / f"w{count}-{n}",
                                     TIERLINE_APP_ID=f"{prefix}w{count}", TIERLINE_TOPIC_PREFIX=f"{prefix}.",
                                     TIERLINE_PARTITIONS=str(PARTITIONS), TIERLINE_INSTANCE_ID=f"w{n}")
                        for n in range(count)]
                for start in ("first", "again"):
                    ready_s, ledger_s, records, rss = start_workers(work / prefix / f"w{count}", envs, args.timeout)
                    print(f"{successes:>12,} {count:>7} {start:>6} {ready_s:>8.1f} {ledger_s:>9.1f} {records:>13,} "
                          f"{rss:>8.0f}")
                    save("ready", {"ready_s": ready_s, "ledger_s": ledger_s, "rss_mb": rss, "records_read": records},
                         successes=successes, workers=count, partitions=PARTITIONS, start=start)


if __name__ == "__main__":
    main()
