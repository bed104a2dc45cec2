"""The poller's own cost per item when a batch ends, in-process: no broker, no provider, nothing else on the cores.

A batch of N items (Anthropic, then OpenAI) is spooled as the window agent spools it; its result
file is what the emulator writes for it, streamed through the provider adapter's own reader; the
emitter downloads it to disk, matches each result with its item and publishes the events to a list
(``tests/fakes``). Prints the microseconds per item from the first result line to the last event,
the best of three runs: the settling half of the worker's cost per item, as ``bench.intake`` is the
other half.

    .venv/bin/python -m bench.settle [N]    # from the repository's folder
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, AsyncIterator, cast

import orjson

from core.limits import BatchGroup
from core.outcomes import ItemContext
from core.validation import Accepted, validate
from emulator import anthropic_api, openai_api
from emulator.behaviour import Behaviour
from providers.base import split_lines
from streams.emit import Emitter
from streams.gc_tuning import tune_gc
from streams.local.workload import make_items
from streams.logs import configure_logging
from streams.runtime import Runtime
from streams.settings import Settings
from tests import fakes
from bench.results import save

SETTINGS = Settings.from_env({"TIERLINE_LOG_LEVEL": "warning"})
NOW = 1_800_000_000.0
CHUNK = 64 << 10  # about what the SDKs' byte streams hand over at a time


def result_file(provider: str, requests: list[tuple[str, bytes, dict[str, Any]]]) -> bytes:
    """What the emulator's batch of these requests downloads as (one line per item)."""
    decide, lines = Behaviour().decide, []
    for custom_id, raw, params in requests:
        outcome = decide(custom_id, raw, params, provider)
        if provider == "anthropic":
            result = {"type": "succeeded", "message": anthropic_api._message(params, outcome)}
            lines.append(orjson.dumps({"custom_id": custom_id, "result": result}) + b"\n")
        else:
            lines.append(openai_api._line(custom_id, 200, openai_api._response_body("/v1/chat/completions", params,
                                                                                     outcome)))
    return b"".join(lines)


async def streamed(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start:start + CHUNK]


async def per_item_us(n: int, provider: str) -> tuple[float, int]:
    """Microseconds per item to settle a batch of ``n`` items of ``provider`` that all succeeded, and the
    bytes of a result line."""
    result_format = SETTINGS.catalogue[provider].wire.results  # the adapter's
    with tempfile.TemporaryDirectory(prefix="tierline-settle-bench-") as folder:
        runtime = fakes.runtime(SETTINGS, Path(folder), clock=lambda: NOW)
        requests, size = [], 0
        for item in make_items(n, "settle", providers=(provider,)):
            accepted = validate(orjson.dumps(item), SETTINGS.catalogue)
            assert isinstance(accepted, Accepted), accepted
            context = ItemContext(item["custom_id"], 1, 0, item["metadata"])
            runtime.spool.append("bench", accepted.line, orjson.dumps(context.encode()))
            requests.append((item["custom_id"], accepted.line, item["params"]))
            size += len(accepted.line) + 1
        spooled = runtime.spool.finish("bench", BatchGroup(provider, model="bench"), n, size)
        data = result_file(provider, requests)
        emitter = Emitter(cast(Runtime, runtime), clock=lambda: NOW)
        started = time.perf_counter()
        tally = await emitter.settle_batch(spooled, "batch_bench", split_lines(streamed(data)), result_format)
        elapsed = time.perf_counter() - started
        assert tally.succeeded == n, tally
        return elapsed / n * 1e6, len(data) // n


async def main(n: int) -> None:
    configure_logging("warning")
    tune_gc()
    print(f"{'items':24} {n:,} a batch, all succeeded, best of 3 runs")
    figures = {}
    for provider in ("anthropic", "openai"):
        us, line = min([await per_item_us(n, provider) for _ in range(3)])
        figures[f"{provider}_us"] = us
        print(f"{'settled (' + provider + ')':24} {us:.1f} µs an item, its result line {line} bytes "
              "(read, download, match, price, encode, publish)")
    save("settle", figures, items=n)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
