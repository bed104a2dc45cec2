"""Latency the realtime tier adds: the worker's endpoint against a direct SDK call to the same emulator.

One run, calls interleaved (direct, through the worker, direct, ...) so that both see the
same machine: N whole calls and N streamed calls each way, with the official Anthropic SDK.
Prints p50 and p99 of the whole call and of the time to first token, each way, and what
the worker adds. Target: at most 2 ms at p50 and 10 ms at p99.

    .venv/bin/python -m bench.realtime_latency [N]    # from the repository's folder
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import anthropic
from anthropic.types import MessageParam

from streams.local.stack import broker_argv, embedded_env, free_port, running, tierline_argv, wait_for_port
from bench.results import save

QUESTION: list[MessageParam] = [
    {"role": "user", "content": "How far does the tide go out at Cannon Beach in December?"}]


def whole(client: anthropic.Anthropic) -> float:
    started = time.perf_counter()
    client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=QUESTION)
    return time.perf_counter() - started


def first_token(client: anthropic.Anthropic) -> float:
    started = time.perf_counter()
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=QUESTION) as stream:
        for _ in stream.text_stream:
            first = time.perf_counter() - started
            break
        for _ in stream.text_stream:
            pass
    return first


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main(n: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="tierline-bench-rt-"))
    broker_port, emulator_port = free_port(), free_port()
    env = embedded_env(broker_port, emulator_port, work / "data", TIERLINE_LOG_LEVEL="warning")
    web_port = int(env["TIERLINE_WEB_PORT"])
    # The emulator answers at once: what is measured is the path, not the model.
    with running(broker_argv(broker_port), broker_port, log=work / "broker.log"), \
            running(tierline_argv("emulator", "--port", str(emulator_port)), emulator_port, log=work / "emu.log"), \
            running(tierline_argv("worker"), env=env, log=work / "worker.log") as worker:
        wait_for_port(web_port, 60, worker)
        direct = anthropic.Anthropic(base_url=f"http://127.0.0.1:{emulator_port}", api_key="k", max_retries=0)
        via = anthropic.Anthropic(base_url=f"http://127.0.0.1:{web_port}/realtime/anthropic", api_key="k",
                                  max_retries=0)
        for client in (direct, via):  # connections, imports, first-call costs
            for _ in range(20):
                whole(client)
                first_token(client)
        figures: dict[str, dict[str, list[float]]] = {"direct": {"whole": [], "ttft": []},
                                                      "worker": {"whole": [], "ttft": []}}
        for _ in range(n):
            for name, client in (("direct", direct), ("worker", via)):
                figures[name]["whole"].append(whole(client))
                figures[name]["ttft"].append(first_token(client))
    print(f"calls                 {n:,} each way and kind (Anthropic SDK, emulator answering at once)")
    for kind, label in (("whole", "whole call"), ("ttft", "time to first token")):
        for q in (50, 99):
            d = percentile(figures["direct"][kind], q) * 1000
            w = percentile(figures["worker"][kind], q) * 1000
            print(f"{label:<20} p{q}  direct {d:6.2f} ms   through the worker {w:6.2f} ms   added {w - d:5.2f} ms")
    save("realtime_latency", {f"{kind}_p{q}_added_ms": (percentile(figures["worker"][kind], q)
                                                        - percentile(figures["direct"][kind], q)) * 1000
                              for kind in ("whole", "ttft") for q in (50, 99)}, calls=n)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
