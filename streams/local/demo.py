"""``tierline demo``: the three tiers on the embedded broker and emulator.

A user waiting (two answers streamed through the realtime endpoint), reports a user will
look at later (async items, signed webhooks received and checked), then the sample
workload through the batch tier, with live progress, a summary and the spend report.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from core.progress import ItemProgress
from streams.cli.follow import Follower, wanted_of
from streams.local.demo_tiers import run_async, run_flex, stream_realtime
from streams.local.stack import (LANES_FILE,
    BUCKET,
    broker_argv,
    embedded_env,
    free_port,
    running,
    s3_env,
    s3_server,
    tierline_argv,
    wait_for_port,
)
from streams.cli.produce import LineProblem, check_lines, numbered_jsonl, publish_lines, read_jsonl
from streams.cli.report import render, spend_report
from streams.settings import Settings
from streams.kafka.topics import ensure_topics
from streams.local.workload import DEMO_WORKLOAD

__all__ = ["run_demo"]

CALLBACK_SECRET = "whsec_" + base64.b64encode(b"the demo's callback secret, 32 b").decode()
QUEUED_MODEL, QUEUE = "gpt-4o-mini", 30_000  # enqueued tokens: its first batch is about 27,000, the second 5,400


def run_demo(workload: Path | None, batch_seconds: float, timeout: float, keep: bool) -> int:
    workload = workload or DEMO_WORKLOAD
    lines = read_jsonl(workload)
    work = Path(tempfile.mkdtemp(prefix="tierline-demo-"))
    # Every process of the demo ends with it, however it ends (kill -9 included): none is left holding a port.
    with s3_server(log=work / "s3.log", die_with_parent=True) as s3_port:
        return _run(lines, workload, work, s3_port, batch_seconds, timeout, keep)


def _run(lines: list[bytes], workload: Path, work: Path, s3_port: int, batch_seconds: float, timeout: float,
         keep: bool) -> int:
    broker_port, emulator_port = free_port(), free_port()
    # Bedrock: the emulated account takes jobs of any size, so that retried items go alone, as elsewhere.
    # OpenAI's queue for gpt-4o-mini takes one of the demo's two batches of that model at a time: tierline,
    # told so, holds the second until the first has ended (and the emulator would refuse it, as OpenAI does).
    env = embedded_env(broker_port, emulator_port, work / "data", s3_port, TIERLINE_BEDROCK_MIN_RECORDS="1",
                       TIERLINE_BATCH_MAX_WAIT_S="3", TIERLINE_ENQUEUED_TOKEN_LIMITS=f"openai/{QUEUED_MODEL}={QUEUE}",
                       TIERLINE_RETRY_BASE_DELAY_S="2", TIERLINE_POLL_INITIAL_S="1", TIERLINE_POLL_MAX_S="5",
                       TIERLINE_BATCH_MAX_ITEMS="500", TIERLINE_LOG_FORMAT="json",
                       TIERLINE_CALLBACK_SECRETS=CALLBACK_SECRET, TIERLINE_CALLBACK_ALLOW_PRIVATE="1")
    settings = Settings.from_env(env)

    def say(text: str) -> None:
        print(text, flush=True)

    say(f"tierline demo: {len(lines):,} work items from {workload.name}; logs in {work}")
    started = time.monotonic()
    with running(broker_argv(broker_port), broker_port, log=work / "broker.log", die_with_parent=True):
        say(f"  broker    127.0.0.1:{broker_port} (Tansu, memory storage)")
        emulator_cmd = tierline_argv("emulator", "--port", str(emulator_port), "--batch-seconds", str(batch_seconds),
                                     "--first-token-ms", "300", "--token-ms", "40",  # a stream one can watch
                                     "--bedrock-min-records", "1", "--enqueued-token-limit", str(QUEUE),
                                     "--providers-file", str(LANES_FILE), "--flex-latency-ms", "800")
        with running(emulator_cmd, emulator_port, env=s3_env(s3_port), log=work / "emulator.log",
                     die_with_parent=True):
            say(f"  emulator  http://127.0.0.1:{emulator_port} (batches take {batch_seconds:g}s)")
            say(f"  S3        http://127.0.0.1:{s3_port} (moto; Bedrock jobs' files in s3://{BUCKET})")
            asyncio.run(ensure_topics(settings))
            with running(tierline_argv("worker"), env=env, log=work / "worker.log", die_with_parent=True) as worker:
                web = f"http://127.0.0.1:{settings.web_port}"
                say(f"  worker    status page {web}/, metrics {web}/metrics, ready {web}/readyz")
                say(f"  watch it  tierline status -b {settings.bootstrap_servers}; tierline report -b "
                    f"{settings.bootstrap_servers}")
                wait_for_port(settings.web_port, 60, worker)
                say("\nrealtime tier: a user is waiting, the answer is streamed through the worker")
                stream_realtime(settings.web_port, say)
                say("\nasync tier: reports the user will look at later; a signed webhook when each is done")
                run_async(settings, CALLBACK_SECRET, say)
                say("\nflex tier: a deadline hours away and cost first, where the model offers flex processing")
                run_flex(settings, say)
                say(f"\nbatch tier: nobody is waiting, half price; OpenAI's queue for {QUEUED_MODEL} holds "
                    f"{QUEUE:,} tokens (--enqueued-token-limit, TIERLINE_ENQUEUED_TOKEN_LIMITS)")
                invalid = list(check_lines(numbered_jsonl(workload), settings))
                if invalid:
                    say(f"  {len(lines):,} lines, {len(invalid):,} of them invalid on purpose: tierline submit refuses "
                        "such lines, the demo publishes them to show where they end (the dead-letter topic)")
                try:
                    progress = asyncio.run(_publish_and_follow(settings, lines, timeout, worker.poll))
                except RuntimeError as exc:
                    print(f"\ndemo failed: {exc}; see {work / 'worker.log'}", file=sys.stderr)
                    return 1
                code = _summary(progress, workload.name, invalid, time.monotonic() - started, work)
                print("\n" + render(asyncio.run(spend_report(settings, None, None)), None, None))
                print("\n$ tierline report --by metadata.team\n"
                      + render(asyncio.run(spend_report(settings, None, None, "metadata.team")), None, None))
                if keep and code == 0:
                    say(f"\nstill running for tierline status / report and {web}/metrics; Ctrl-C stops it all")
                    _wait_for_interrupt()
    say("broker, emulator, S3 server and worker stopped")
    return code


async def _publish_and_follow(settings: Settings, lines: list[bytes], timeout: float,
                              worker_exit: Callable[[], int | None]) -> ItemProgress | None:
    def alive() -> None:
        if (code := worker_exit()) is not None:
            raise RuntimeError(f"the worker exited with code {code}")

    async with Follower(settings, *wanted_of(lines)) as follower:
        await publish_lines(settings, lines)
        finished = await follower.until_done(timeout, alive=alive)
    return follower.progress if finished else None


def _summary(progress: ItemProgress | None, workload: str, invalid: list[LineProblem], elapsed: float,
             work: Path) -> int:
    if progress is None:
        print(f"demo did not finish in time: see the logs in {work}", file=sys.stderr)
        return 1
    p = progress
    rows = [
        ("lines published", f"{p.total:,}"),
        ("  invalid on purpose", f"{len(invalid):,}"),
        ("ended", f"{p.ended:,}"),
        ("  succeeded", f"{len(p.succeeded):,}"),
        ("    of which after a retry", f"{p.after_retry:,}"),
        ("  failed for good", f"{len(p.failed - p.succeeded):,}"),
        ("  dead-lettered", f"{p.dead_lettered:,}"),
        ("provider batches", f"{len(p.batches):,}"),
        ("input tokens", f"{p.tokens['input']:,}"),
        ("output tokens", f"{p.tokens['output']:,}"),
        ("cost at batch prices", f"${p.cost_usd:,.4f}"),
        ("the same at realtime prices", f"${p.realtime_usd:,.4f}"),
    ]
    print("\nsummary")
    for name, value in rows:
        print(f"  {name:<28} {value:>9}")
    print(f"  invalid lines of {workload}: " + ", ".join(f"{problem.number} {problem.reason}" for problem in invalid))
    if Counter(problem.reason for problem in invalid) != p.dead_reasons:  # submit's checks and the worker's agree
        print("  dead-letter reasons          " + ", ".join(f"{k} {v}" for k, v in sorted(p.dead_reasons.items())))
    print(f"  finished in {elapsed:.1f}s")
    return 0


def _wait_for_interrupt() -> None:
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stops it as Ctrl-C does, cleaning up
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
