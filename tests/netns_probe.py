"""Run on the hub host of a ``tests.netns.Network`` (``ip netns exec``): publish work items, then tell where
every item has got to, as JSON on stdout. The deployment is the one ``TIERLINE_*`` in the environment names.

    python -m tests.netns_probe publish N PREFIX [librdkafka]   # by tierline's producer, or librdkafka's default
    python -m tests.netns_probe watch N TIMEOUT_S EMULATOR_URL
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import urllib.request
from collections import Counter

import orjson
from confluent_kafka import Producer

from streams.local.workload import make_items
from streams.settings import Settings
from tests.support import publish_items
from tests.watch import Progress, Watcher


def _publish(n: int, prefix: str, placement: str) -> None:
    settings, items = Settings.from_env(), make_items(n, prefix, providers=("anthropic", "openai"))
    if placement == "librdkafka":  # crc32 of the key: most items away from their home partition
        producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})
        for item in items:
            producer.produce(settings.topics.requests, value=orjson.dumps(item), key=item["custom_id"].encode())
        if left := producer.flush(60):
            raise SystemExit(f"librdkafka could not deliver {left} records")
    else:
        publish_items(settings, items)
    print(json.dumps({"published": n}))


async def _watch(n: int, timeout_s: float) -> Progress:
    async with Watcher(Settings.from_env()) as watcher:
        await watcher.until(lambda progress: len(progress.ended()) >= n, timeout_s)
        await watcher.poll(2.0)  # anything late, such as a duplicate
        return watcher.progress


def _summary(progress: Progress, emulator_url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{emulator_url}/_emulator/batches", timeout=30) as answer:
        batches = json.load(answer)["batches"]
    return {
        # per custom_id, each result event as (its provider batch, a digest of what it says)
        "results": {cid: [[e["batch_id"], hashlib.sha1(orjson.dumps(e["response"])).hexdigest()] for e in events]
                    for cid, events in progress.results.items()},
        "final_failures": {cid: sum(e["final"] for e in events) for cid, events in progress.failures.items()
                           if any(e["final"] for e in events)},
        "retried": sorted(progress.retried()),
        "dead": len(progress.dead),
        "submissions": Counter(cid for batch in batches for cid in batch["custom_ids"]),
    }


def main(argv: list[str]) -> None:
    if argv[0] == "publish":
        _publish(int(argv[1]), argv[2], argv[3] if len(argv) > 3 else "murmur2")
    elif argv[0] == "watch":
        progress = asyncio.run(_watch(int(argv[1]), float(argv[2])))
        print(json.dumps(_summary(progress, argv[3])))
    else:
        raise SystemExit(f"unknown probe {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
