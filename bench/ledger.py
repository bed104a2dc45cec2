"""The ledger of successes with and without its in-memory bound, in-process.

N successes (2,000,000 by default) are recorded through ``Ledger.record`` in chunks of 5,000, as a
worker settling batches records them, once with every success held in memory and once with the
worker's default bound (``TIERLINE_LEDGER_IN_MEMORY``, 500,000; the rest in a file on disk). Prints,
for each (in a process of its own), what the resident set grew by at each quarter of N, the longest
single ``record`` call (a stall of the worker's loop), the cost of a look-up (of the oldest
successes, of the newest, of a custom_id never seen: each new request asks that), and how long a
starting worker takes to read them all back (``Ledger.take`` for each of the topic's records, as at
start; the Kafka read itself not counted). The target: memory flat past the bound, look-ups of a few
microseconds.

    .venv/bin/python -m bench.ledger [N]    # from the repository's folder
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import ConsumerRecord

from schemas import RunKey
from streams.kafka.connection import KafkaConnection
from streams.local.proc_stats import stats_of
from streams.settings import Settings
from streams.state.ledger import Ledger
from bench.results import save

CHUNK = 5_000
LOOKUPS = 20_000


def chunk_keys(chunk: int) -> list[RunKey]:
    """The custom_ids of one chunk of successes."""
    return [f"bench-item-{chunk:06d}-{k:05d}" for k in range(CHUNK)]


def fill(ledger: Ledger, n: int) -> tuple[list[float], float, float]:
    """MiB the resident set had grown by at each quarter of ``n``, the longest record call in ms, and the
    whole fill in s."""
    gc.collect()
    before, longest, started, grown = stats_of(os.getpid()).rss_mb, 0.0, time.perf_counter(), []
    chunks = n // CHUNK
    for chunk in range(chunks):
        keys = chunk_keys(chunk)
        at = time.perf_counter()
        ledger.record("tl-bench", chunk, "msgbatch_bench", keys)
        longest = max(longest, time.perf_counter() - at)
        if (chunk + 1) % max(1, chunks // 4) == 0:
            grown.append(stats_of(os.getpid()).rss_mb - before)
    return grown, longest * 1000, time.perf_counter() - started


def read_back_s(n: int, bound: int, folder: Path) -> float:
    """Seconds a fresh ledger takes to read ``n`` successes back from the records ``fill`` made."""
    ledger = Ledger(KafkaConnection("unused:9092"), "ledger", folder, bound)
    records = []
    for chunk in range(n // CHUNK):
        # Each record as the worker that settled its chunk wrote it: a ledger of its own.
        writer = Ledger(KafkaConnection("unused:9092"), "ledger")
        value = writer.record("tl-bench", chunk, "msgbatch_bench", chunk_keys(chunk)).value
        assert isinstance(value, bytes)
        records.append(ConsumerRecord(topic="ledger", partition=0, offset=chunk, timestamp=0, timestamp_type=0,
                                      key=None, value=value, checksum=None, serialized_key_size=0,
                                      serialized_value_size=len(value), headers=()))
    started = time.perf_counter()
    for record in records:
        ledger.take(record)
    return time.perf_counter() - started


def lookup_us(ledger: Ledger, keys: list[RunKey] | list[str]) -> float:
    started = time.perf_counter()
    for key in keys:
        ledger.succeeded(key)
    return (time.perf_counter() - started) / len(keys) * 1e6


def one(n: int, bound: int) -> None:
    """Fill one ledger (``bound`` 0: all in memory) and print its figures."""
    with tempfile.TemporaryDirectory(prefix="tierline-ledger-") as folder:
        ledger = Ledger(KafkaConnection("unused:9092"), "ledger", Path(folder), bound)
        grown, longest, elapsed = fill(ledger, n)
        in_memory, on_disk = ledger.entries
        chunks = n // CHUNK
        oldest = [key for c in range(LOOKUPS // CHUNK) for key in chunk_keys(c)]
        newest = [key for c in range(chunks - LOOKUPS // CHUNK, chunks) for key in chunk_keys(c)]
        unseen = [f"bench-new-{k:07d}" for k in range(LOOKUPS)]
        name = f"bound {bound:,}" if bound else "all in memory"
        print(f"{name:<30}memory + {' / '.join(f'{mb:,.0f}' for mb in grown)} MiB at each quarter "
              f"({in_memory:,} held, {on_disk:,} on disk); longest record() {longest:,.0f} ms; all in {elapsed:,.1f} s")
        lookups = {"oldest": lookup_us(ledger, oldest), "newest": lookup_us(ledger, newest),
                   "never_seen": lookup_us(ledger, unseen)}
        print(f"{'':<30}look-up: oldest {lookups['oldest']:.2f} µs, newest {lookups['newest']:.2f} µs, "
              f"never seen {lookups['never_seen']:.2f} µs", flush=True)
        del ledger
        took = read_back_s(n, bound, Path(folder))
        print(f"{'':<30}read back at a start: {took:,.1f} s ({took / n * 1e6:.1f} µs a success)", flush=True)
        save("ledger", {"memory_mb": grown[-1], "read_back_us_per_success": took / n * 1e6,
                        **{f"lookup_{name}_us": us for name, us in lookups.items()}}, successes=n, bound=bound)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=2_000_000, help="successes (default 2,000,000)")
    parser.add_argument("--bound", type=int, default=None, help=argparse.SUPPRESS)  # one ledger, in this process
    args = parser.parse_args()
    if args.bound is not None:
        one(args.n, args.bound)
        return
    bound = Settings.from_env({}).ledger_in_memory
    print(f"successes                     {args.n:,} recorded in chunks of {CHUNK:,}", flush=True)
    for each in (0, bound):
        subprocess.run([sys.executable, "-m", "bench.ledger", str(args.n), "--bound", str(each)], check=True)
    print(f"target                        memory flat past the bound ({bound:,} in memory), look-ups of a few µs")


if __name__ == "__main__":
    main()
