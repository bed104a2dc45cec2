"""Where the time goes between publishing a file and its last result event: 10,000 OpenAI items in batches of
1,000 that the emulator ends 2 s after their create, one worker on the embedded broker.

    .venv/bin/python -m bench.path [--items 10000] [--batch-items 1000] [--batch-seconds 2] [--cli]

Prints each step of the path as the worker's log times it (first and last of the batches), from the first
publish: published, batches opened and closed, created at the provider, ended there (the create plus the
emulator's batch time), seen ended by a poll, settled; then the last result event read. What is beyond the
provider's own time is tierline's.

With ``--cli`` the file is given to ``tierline submit FILE --follow``, as a user would, and the time runs
from that command's start to its exit (it exits once it has seen every item's result): the command's own
start, its pass over the file and its following are counted too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import orjson

from bench.common import TopicCounter, all_ready, embedded_stack, worker_on
from bench.results import save
from streams.cli.produce import publish_lines
from streams.kafka.topics import ensure_topics
from streams.local.stack import embedded_env, tierline_argv
from streams.settings import Settings

STEPS = ("batch_opened", "batch_closed", "batch_submitted", "batch_ended", "batch_settled")


def steps(log: Path, start: float) -> dict[str, list[float]]:
    """Each step's times in the worker's log, in seconds from ``start``."""
    found: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and (event := json.loads(line)).get("event") in STEPS:
            found.setdefault(event["event"], []).append(datetime.fromisoformat(event["timestamp"]).timestamp() - start)
    return found


async def run(work: Path, broker_port: int, emulator_port: int, items: int,
              batch_items: int, cli: bool = False) -> tuple[float, float | None, float, Path]:
    """The first publish's wall time (or the command's start), how long publishing took (None: the command's
    own, not timed apart), when the last result came (from that start), and the worker's log."""
    env = embedded_env(broker_port, emulator_port, work / "data", TIERLINE_APP_ID="path", TIERLINE_TOPIC_PREFIX="path.",
                       TIERLINE_BATCH_MAX_ITEMS=str(batch_items))
    settings = Settings.from_env(env)
    await ensure_topics(settings)
    log = work / "worker.log"
    lines = [orjson.dumps({"custom_id": f"path-{i:06d}", "provider": "openai", "params": {
        "model": "gpt-4o-mini", "max_tokens": 64, "messages": [{"role": "user", "content": f"Question {i}"}]}})
        for i in range(items)]
    with worker_on(env, log):
        await all_ready([int(env["TIERLINE_WEB_PORT"])])
        if cli:
            start, took = _submit_and_follow(work, env, lines)
            return start, None, took, log
        async with TopicCounter(settings.bootstrap_servers, settings.topics.results) as results:
            start = time.time()
            await publish_lines(settings, lines)
            published = time.time() - start
            await results.until(items, timeout_s=300)
            last = time.time() - start
    return start, published, last, log


def _submit_and_follow(work: Path, env: dict[str, str], lines: list[bytes]) -> tuple[float, float]:
    """``tierline submit FILE --follow`` run to its end: its start, and how long it took."""
    path = work / "items.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    start = time.time()
    done = subprocess.run(tierline_argv("submit", str(path), "--follow", "--timeout", "300"),
                          env={**os.environ, **env}, capture_output=True)
    took = time.time() - start
    if done.returncode != 0:
        raise SystemExit(f"tierline submit --follow exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return start, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch-items", type=int, default=1_000)
    parser.add_argument("--batch-seconds", type=float, default=2.0)
    parser.add_argument("--cli", action="store_true", help="time tierline submit FILE --follow, start to exit")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tierline-path-bench-"))
    with embedded_stack(work, args.batch_seconds) as stack:
        start, published, last, log = asyncio.run(run(work, stack.broker_port, stack.emulator_port, args.items,
                                                      args.batch_items, args.cli))
    found = steps(log, start)
    at_provider = [t + args.batch_seconds for t in found["batch_submitted"]]
    since = "tierline submit --follow's start" if args.cli else "the first publish"
    print(f"items                {args.items:,} in batches of {args.batch_items:,} that the provider ends "
          f"{args.batch_seconds:g} s after their create; seconds from {since}, first and last batch")
    if published is not None:
        print(f"published            {published:6.2f}")
    for step, label in (("batch_opened", "opened"), ("batch_closed", "closed"), ("batch_submitted", "created")):
        print(f"{label:<20} {min(found[step]):6.2f} {max(found[step]):6.2f}")
    print(f"{'ended at provider':<20} {min(at_provider):6.2f} {max(at_provider):6.2f}")
    print(f"{'seen ended (poll)':<20} {min(found['batch_ended']):6.2f} {max(found['batch_ended']):6.2f}")
    print(f"{'settled':<20} {min(found['batch_settled']):6.2f} {max(found['batch_settled']):6.2f}")
    beyond = last - args.batch_seconds
    ended = "submit --follow ended" if args.cli else "last result"
    print(f"{ended:<20} {last:6.2f}: {beyond:.2f} s beyond the provider's own {args.batch_seconds:g} s")
    figures = {"last_result_s": last, "beyond_provider_s": beyond}
    save("path", figures if published is None else {**figures, "published_s": published}, items=args.items,
         batch_items=args.batch_items, batch_seconds=args.batch_seconds, since="cli" if args.cli else "publish")


if __name__ == "__main__":
    main()
