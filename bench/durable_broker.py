"""What keeping the embedded broker's topics on disk costs: start-up, restart and raw throughput,
``tierline broker --data DIR`` (Tansu on SeaweedFS) against the in-memory broker.

    .venv/bin/python -m bench.durable_broker [N]    # from the repository's folder
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.pipeline import raw_rate
from streams.local.stack import broker_argv, free_port, running, tierline_argv, wait_for_port
from streams.local.workload import make_items


def started(argv: list[str], port: int, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    began = time.monotonic()
    proc = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    wait_for_port(port, 180, proc)
    return proc, time.monotonic() - began


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    lines = [orjson.dumps(item) for item in make_items(n, "durable", providers=("anthropic", "openai"))]
    work = Path(tempfile.mkdtemp(prefix="tierline-durable-bench-"))
    port = free_port()
    began = time.monotonic()
    with running(broker_argv(port), port, log=work / "memory.log"):
        memory_start = time.monotonic() - began
        memory = asyncio.run(raw_rate(f"127.0.0.1:{port}", lines))
    port = free_port()
    argv = tierline_argv("broker", "--data", str(work / "kafka"), "--port", str(port))
    proc, first_start = started(argv, port, work / "durable.log")
    durable = asyncio.run(raw_rate(f"127.0.0.1:{port}", lines))
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    proc, restart = started(argv, port, work / "durable.log")
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    size = sum(map(len, lines)) / len(lines)
    print(f"items                         {n:,} of about {size:.0f} bytes, produced and consumed back")
    print(f"memory broker                 ready in {memory_start:.1f} s, {memory:,.0f} items/s")
    print(f"durable broker (SeaweedFS)    ready in {first_start:.1f} s first, {restart:.1f} s after a restart "
          f"with the data; {durable:,.0f} items/s ({durable / memory:.0%} of memory)")


if __name__ == "__main__":
    main()
