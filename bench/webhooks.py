"""From the provider ending a batch to its last result event on Kafka, with polling alone and with webhooks:
10,000 OpenAI items in one batch on the emulator, a worker on the embedded broker.

    .venv/bin/python -m bench.webhooks [--items 10000] [--batch-seconds 60]

The provider's end is the batch's create (the worker's ``batch_submitted``) plus the emulator's batch time; the
last result is when the 10,000th result event is read. The download alone (the SDK fetching the same output
file) is measured in the same run: what remains is waiting for the poll, and tierline's own settle.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import openai
import orjson

from bench.common import TopicCounter, embedded_stack, worker_on
from bench.results import save
from streams.cli.produce import publish_lines
from streams.kafka.topics import ensure_topics
from streams.local.stack import embedded_env
from streams.settings import Settings


def submitted_at(log: Path) -> float:
    """When the worker created the batch (its log's ``batch_submitted``), in Unix seconds."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and (event := json.loads(line)).get("event") == "batch_submitted":
            return datetime.fromisoformat(event["timestamp"]).timestamp()
    raise LookupError(f"no batch_submitted in {log}")


async def configure(emulator_port: int, url: str, secret: str) -> None:
    body = {"openai": {"url": url, "secret": secret}} if url else {}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{emulator_port}/_emulator/webhooks", json=body) as answer:
            answer.raise_for_status()


def download_s(emulator_port: int) -> float:
    """Fetching the newest completed batch's output file whole, through the SDK: the download alone."""
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{emulator_port}/v1", api_key="emulator-key")
    output = next(b.output_file_id for b in client.batches.list(limit=10)
                  if b.status == "completed" and b.output_file_id)
    started = time.perf_counter()
    client.files.content(output).read()
    return time.perf_counter() - started


async def one_run(work: Path, broker_port: int, emulator_port: int, items: int, batch_s: float,
                  hooked: bool) -> tuple[float, float]:
    name = "hooked" if hooked else "polled"
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode() if hooked else ""
    env = embedded_env(broker_port, emulator_port, work / name / "data", TIERLINE_APP_ID=f"wh{name}",
                       TIERLINE_TOPIC_PREFIX=f"wh{name}.", TIERLINE_BATCH_MAX_WAIT_S="2",
                       OPENAI_WEBHOOK_SECRET=secret)
    settings = Settings.from_env(env)
    await ensure_topics(settings)
    await configure(emulator_port, f"http://127.0.0.1:{env['TIERLINE_WEB_PORT']}/webhooks/openai" if hooked else "",
                    secret)
    log = work / f"worker-{name}.log"
    with worker_on(env, log):
        lines = [orjson.dumps({"custom_id": f"{name}-{i:06d}", "provider": "openai", "params": {
            "model": "gpt-4o-mini", "max_tokens": 64, "messages": [{"role": "user", "content": f"Question {i}"}]}})
            for i in range(items)]
        async with TopicCounter(settings.bootstrap_servers, settings.topics.results) as results:
            await publish_lines(settings, lines)
            await results.until(items, timeout_s=batch_s + 900)
            last = time.time()
    await configure(emulator_port, "", "")
    return last - (submitted_at(log) + batch_s), download_s(emulator_port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch-seconds", type=float, default=60.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tierline-webhooks-bench-"))
    with embedded_stack(work, args.batch_seconds) as stack:
        polled, download = asyncio.run(one_run(work, stack.broker_port, stack.emulator_port, args.items,
                                               args.batch_seconds, hooked=False))
        hooked, download2 = asyncio.run(one_run(work, stack.broker_port, stack.emulator_port, args.items,
                                                args.batch_seconds, hooked=True))
    print(f"items                     {args.items:,} in one OpenAI batch that takes {args.batch_seconds:g} s")
    print(f"ended -> last result      polling alone {polled:.1f} s, with webhooks {hooked:.1f} s")
    print(f"download alone            {min(download, download2):.2f} s (the output file, through the SDK)")
    save("webhooks", {"polled_s": polled, "hooked_s": hooked, "download_s": min(download, download2)},
         items=args.items, batch_seconds=args.batch_seconds)


if __name__ == "__main__":
    main()
