"""What the benchmarks share: the embedded stack and a worker on it, counting events on a topic as raw
records, and work items of a chosen size."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Iterator, NamedTuple

import aiohttp
from aiokafka import AIOKafkaConsumer

from streams.local.stack import broker_argv, free_port, running, tierline_argv, wait_for_port

__all__ = ["Stack", "embedded_stack", "worker_on", "all_ready", "TopicCounter", "padded_items", "emulator_batches"]


class Stack(NamedTuple):
    broker_port: int
    emulator_port: int
    broker: subprocess.Popen[bytes]
    emulator: subprocess.Popen[bytes]


@contextmanager
def embedded_stack(work: Path, batch_seconds: float) -> Iterator[Stack]:
    """The embedded broker, and an emulator whose batches take ``batch_seconds`` to end, on free ports.

    A SIGTERM (``kill``, ``timeout``) ends the bench as Ctrl-C does, so that its child processes are
    stopped too instead of left running to skew the next measurement."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    broker_port, emulator_port = free_port(), free_port()
    with running(broker_argv(broker_port), broker_port, log=work / "broker.log") as broker:
        argv = tierline_argv("emulator", "--port", str(emulator_port), "--batch-seconds", str(batch_seconds))
        with running(argv, emulator_port, log=work / "emulator.log") as emulator:
            yield Stack(broker_port, emulator_port, broker, emulator)


@contextmanager
def worker_on(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A worker with ``env``, once its web server answers."""
    with running(tierline_argv("worker"), env=env, log=log) as worker:
        wait_for_port(int(env["TIERLINE_WEB_PORT"]), 60, worker)
        yield worker


async def all_ready(web_ports: list[int], timeout_s: float = 120) -> None:
    """Until every worker answers ``/readyz`` with 200 twice in a row a second apart: their group has
    settled, so no rebalance falls inside what a bench times."""
    deadline, settled = time.monotonic() + timeout_s, 0
    async with aiohttp.ClientSession() as session:
        while settled < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the workers were not all ready within {timeout_s:.0f} s")
            statuses = []
            for port in web_ports:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    statuses.append(response.status)
            settled = settled + 1 if all(status == 200 for status in statuses) else 0
            await asyncio.sleep(1)


class TopicCounter:
    """Counts the records arriving on a topic from its beginning, without decoding them."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers, group_id=None,
                                          auto_offset_reset="earliest", fetch_max_bytes=32 << 20)
        self.seen = 0

    async def __aenter__(self) -> TopicCounter:
        await self._consumer.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._consumer.stop()

    async def until(self, total: int, timeout_s: float) -> None:
        """Read until ``total`` records have been seen in all."""
        deadline = time.monotonic() + timeout_s
        while self.seen < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.seen} of {total} records arrived within {timeout_s:.0f} s")
            batch = await self._consumer.getmany(timeout_ms=200, max_records=50_000)
            self.seen += sum(len(records) for records in batch.values())


def padded_items(n: int, prefix: str, item_bytes: int, provider: str = "anthropic") -> list[dict[str, Any]]:
    """``n`` valid items of about ``item_bytes`` each, their prompt padded with words."""
    filler = ("tide pool " * (item_bytes // 10 + 1))[: max(item_bytes - 200, 0)]
    items: list[dict[str, Any]] = []
    for i in range(n):
        messages = [{"role": "user", "content": f"Question {i}: {filler}"}]
        if provider == "anthropic":
            params = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": messages}
            items.append({"custom_id": f"{prefix}-{i:06d}", "provider": "anthropic", "params": params})
        else:
            params = {"model": "gpt-4o-mini", "max_tokens": 64, "messages": messages}
            items.append({"custom_id": f"{prefix}-{i:06d}", "provider": "openai", "endpoint": "/v1/chat/completions",
                          "params": params})
    return items


async def emulator_batches(emulator_port: int) -> list[dict[str, Any]]:
    """Every batch the emulator has accepted."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{emulator_port}/_emulator/batches") as response:
            batches: list[dict[str, Any]] = (await response.json())["batches"]
            return batches
