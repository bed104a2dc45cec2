"""``tierline demo``: the whole batch tier on the embedded broker and emulator."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import orjson

from streams.local import broker_argv, embedded_env, free_port, running, tierline_argv
from streams.produce import check_lines, publish_lines, read_jsonl
from streams.settings import Settings
from streams.topics import ensure_topics
from streams.watch import Progress, Watcher
from streams.workload import DEMO_WORKLOAD

__all__ = ["run_demo"]


def run_demo(workload: Path | None, batch_seconds: float, timeout: float) -> int:
    workload = workload or DEMO_WORKLOAD
    lines = read_jsonl(workload)
    work = Path(tempfile.mkdtemp(prefix="tierline-demo-"))
    broker_port, emulator_port = free_port(), free_port()
    env = embedded_env(broker_port, emulator_port, work / "data", TIERLINE_BATCH_MAX_WAIT_S="3",
                       TIERLINE_RETRY_BASE_DELAY_S="2", TIERLINE_POLL_INITIAL_S="1", TIERLINE_POLL_MAX_S="5",
                       TIERLINE_BATCH_MAX_ITEMS="500", TIERLINE_LOG_FORMAT="json")
    settings = Settings.from_env(env)
    say = lambda text: print(text, flush=True)  # noqa: E731
    say(f"tierline demo: {len(lines)} work items from {workload.name}; logs in {work}")
    started = time.monotonic()
    with running(broker_argv(broker_port), broker_port, log=work / "broker.log"):
        say(f"  broker    127.0.0.1:{broker_port} (Tansu, memory storage)")
        emulator_cmd = tierline_argv("emulator", "--port", str(emulator_port), "--batch-seconds", str(batch_seconds))
        with running(emulator_cmd, emulator_port, log=work / "emulator.log"):
            say(f"  emulator  http://127.0.0.1:{emulator_port} (batches take {batch_seconds:g}s)")
            asyncio.run(ensure_topics(settings))
            with running(tierline_argv("worker"), env=env, log=work / "worker.log") as worker:
                say("  worker    started; publishing the workload")
                try:
                    progress = asyncio.run(_publish_and_follow(settings, lines, timeout, worker.poll))
                except RuntimeError as exc:
                    print(f"\ndemo failed: {exc}; see {work / 'worker.log'}", file=sys.stderr)
                    return 1
    elapsed = time.monotonic() - started
    return _summary(progress, lines, settings, elapsed, work)


async def _publish_and_follow(settings: Settings, lines: list[bytes], timeout: float,
                              worker_exit: Callable[[], int | None]) -> Progress | None:
    bad = {p.number for p in check_lines(lines, settings)}
    good = {orjson.loads(line)["custom_id"] for n, line in enumerate(lines, 1) if n not in bad}
    await publish_lines(settings, lines)
    tty = sys.stdout.isatty()
    last = [0.0]

    def show(p: Progress) -> None:
        if worker_exit() is not None:
            raise RuntimeError(f"the worker exited with code {worker_exit()}")
        now = time.monotonic()
        if now - last[0] < (0.2 if tty else 5.0):
            return
        last[0] = now
        done = len(p.ended() & good)
        width = 30
        bar = "#" * int(width * done / max(1, len(good)))
        line = (f"  [{bar:<{width}}] {done}/{len(good)} ended  results {len(p.results)}  "
                f"retried {len(p.retried())}  failed {len(p.final_failures())}  dead-lettered {len(p.dead)}")
        print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)

    async with Watcher(settings) as watcher:
        finished = await watcher.until(lambda p: good <= p.ended() and len(p.dead) >= len(bad), timeout, show)
        if tty:
            print()
        return watcher.progress if finished else None


def _summary(progress: Progress | None, lines: list[bytes], settings: Settings, elapsed: float,
             work: Path) -> int:
    if progress is None:
        print(f"demo did not finish in time: see the logs in {work}", file=sys.stderr)
        return 1
    reasons: dict[str, int] = {}
    for letter in progress.dead:
        reasons[letter["reason"]] = reasons.get(letter["reason"], 0) + 1
    rows = [
        ("work items published", len(lines)),
        ("succeeded", len(progress.results)),
        ("  of which after a retry", sum(1 for e in progress.results.values() if e[0]["attempt"] > 1)),
        ("failed for good", len(progress.final_failures())),
        ("dead-lettered", len(progress.dead)),
        ("provider batches", len(progress.batches)),
        ("input tokens", progress.tokens["input"]),
        ("output tokens", progress.tokens["output"]),
    ]
    print("\nsummary")
    for name, value in rows:
        print(f"  {name:<26} {value:>8,}")
    print("  dead-letter reasons       " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    print(f"  finished in {elapsed:.1f}s; broker, emulator and worker stopped")
    return 0
