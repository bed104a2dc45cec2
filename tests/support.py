"""What the tests share: worker processes on their own topics, following events, the emulator's records, raw JSON."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiohttp import web
from jsonschema import Draft202012Validator
from prometheus_client.parser import text_string_to_metric_families

from providers.base import BatchProvider, ItemOutcome
from schemas.json_schema import schema_for
from streams.cli.produce import publish_lines
from streams.kafka.topics import ensure_topics
from streams.kafka.whole_topic import assign_bounded, partitions_of, read_to_end
from streams.local.stack import (LANES_FILE, embedded_env, free_port, running, s3_env, spawn, stop, tierline_argv,
                                 wait_for_port)
from streams.settings import Settings
from tests.watch import Progress, Watcher


#: Bedrock's minimum records per job in the shared emulator: 1, so that retried items run alone
#: as the other providers' do. The minimum itself is tested with an emulator of its own.
MIN_RECORDS = {"TIERLINE_BEDROCK_MIN_RECORDS": "1"}


def emulator_argv(port: int, batch_seconds: float, *args: str) -> list[str]:
    return tierline_argv("emulator", "--port", str(port), "--batch-seconds", str(batch_seconds),
                         "--bedrock-min-records", "1", "--providers-file", str(LANES_FILE), *args)


class Workers:
    """Worker processes on their own topics (a fresh prefix each), for one test module."""

    def __init__(self, broker_port: int, emulator_port: int, tmp: pytest.TempPathFactory, s3_port: int) -> None:
        self._broker_port, self._emulator_port, self._tmp, self._s3_port = broker_port, emulator_port, tmp, s3_port
        self.procs: list[subprocess.Popen] = []

    @property
    def emulator_port(self) -> int:
        return self._emulator_port

    def env(self, **overrides: str) -> dict[str, str]:
        """Settings for a new deployment: its own topics, app id and data directory."""
        name = f"t{uuid.uuid4().hex[:8]}"
        folder: Path = self._tmp.mktemp(name)
        quick = {"TIERLINE_BATCH_MAX_WAIT_S": "1", "TIERLINE_RETRY_BASE_DELAY_S": "0.5",
                 "TIERLINE_POLL_INITIAL_S": "0.3", "TIERLINE_POLL_MAX_S": "1"}
        env = embedded_env(self._broker_port, self._emulator_port, folder / "data", self._s3_port,
                           TIERLINE_TOPIC_PREFIX=f"{name}.", TIERLINE_APP_ID=name,
                           **{**quick, **MIN_RECORDS, **overrides})
        asyncio.run(ensure_topics(Settings.from_env(env)))
        return env

    def start(self, env: dict[str, str], **overrides: str) -> subprocess.Popen:
        """A worker process, returned once its web server (``proc.web_port``) listens; its log is ``proc.log``."""
        env = {**env, **overrides, "TIERLINE_WEB_PORT": overrides.get("TIERLINE_WEB_PORT") or str(free_port())}
        log = Path(env["TIERLINE_DATA_DIR"]).parent / f"worker-{len(self.procs)}.log"
        proc = spawn(tierline_argv("worker"), env, log)
        proc.log = log  # type: ignore[attr-defined]
        proc.web_port = int(env["TIERLINE_WEB_PORT"])  # type: ignore[attr-defined]
        self.procs.append(proc)
        wait_for_port(int(env["TIERLINE_WEB_PORT"]), 60, proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """``kill -9``: no clean-up of any kind."""
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs:
            stop(proc)


@contextmanager
def slow_emulator_workers(broker_port: int, s3_port: int, tmp: pytest.TempPathFactory, batch_seconds: float,
                          *emulator_args: str) -> Iterator[Workers]:
    """Workers against an emulator of their own whose batches take ``batch_seconds``: time to act on them."""
    port = free_port()
    with running(emulator_argv(port, batch_seconds, *emulator_args), port, env=s3_env(s3_port),
                 log=tmp.mktemp("slow-emulator") / "emulator.log"):
        pool = Workers(broker_port, port, tmp, s3_port)
        try:
            yield pool
        finally:
            pool.stop_all()


def publish_items(settings: Settings, items: list[dict]) -> None:
    """Publish work items as a producer would, keyed by custom_id."""
    asyncio.run(publish_lines(settings, [orjson.dumps(item) for item in items]))


def publish(env: dict[str, str], items: list[dict]) -> None:
    """Publish work items to the deployment ``env`` describes."""
    publish_items(Settings.from_env(env), items)


def log_events(proc: subprocess.Popen, event: str) -> list[dict]:
    """The worker's structured log lines for one event."""
    found = []
    for line in proc.log.read_text(errors="replace").splitlines():  # type: ignore[attr-defined]
        if f'"event": "{event}"' in line:
            found.append(json.loads(line))
    return found


def wait_for_log(proc: subprocess.Popen, event: str, count: int = 1, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(found := log_events(proc, event)) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the worker never logged {event!r} {count} times")


def account(emulator_port: int, provider: str, refusal: str | None) -> None:
    """Make the emulator's ``provider`` refuse batch creates for the account's sake (``refusal``), or stop."""
    body = orjson.dumps({"provider": provider, "refusal": refusal})
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{emulator_port}/_emulator/account", body,
                                                  {"content-type": "application/json"}), timeout=10)


def recorded_batches(emulator_port: int) -> list[dict]:
    """Every batch the emulator accepted: provider, id and custom_ids, in order."""
    with urllib.request.urlopen(f"http://127.0.0.1:{emulator_port}/_emulator/batches") as response:
        return json.load(response)["batches"]


def submissions(emulator_port: int) -> Counter[str]:
    """How many provider batches each custom_id was submitted in, as the emulator recorded."""
    batches = recorded_batches(emulator_port)
    return Counter(cid for batch in batches for cid in batch["custom_ids"])


async def follow(settings: Settings, done, timeout: float = 240) -> Progress:  # type: ignore[no-untyped-def]
    async with Watcher(settings) as watcher:
        assert await watcher.until(done, timeout), "timed out waiting for the events"
        await watcher.poll(1.0)  # anything late, such as a duplicate
        return watcher.progress


async def committed_to_end(settings: Settings, timeout: float = 60) -> None:
    """Wait until the windowing agent has committed every requests offset."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                                group_id=f"{settings.app_id}-window", enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topics.requests, p) for p in range(settings.partitions)]
        _, ends = await assign_bounded(consumer, tps)
        for _ in range(int(timeout * 4)):
            committed = {tp: await consumer.committed(tp) or 0 for tp in tps}
            if all(committed[tp] >= ends[tp] for tp in tps):
                return
            await asyncio.sleep(0.25)
        raise AssertionError(f"offsets not committed to the end: {committed} < {ends}")
    finally:
        await consumer.stop()


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scraped(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = get(port, "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def validate_events(topic: str, events: list[dict]) -> None:
    validator = Draft202012Validator(schema_for(topic))
    for event in events:
        validator.validate(event)


DEEP = "__deep__"


def dumps(value: Any) -> bytes:
    """JSON as any producer might write it: integers of any size, Infinity (not JSON: a dead letter)."""
    return json.dumps(value, ensure_ascii=False).encode()


def nested(depth: int) -> bytes:
    """JSON nested ``depth`` levels deep, written by hand: orjson itself stops at 254."""
    opening = "".join('{"k":' if level % 2 == 0 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 == 0 else "]" for level in reversed(range(depth)))
    return f"{opening}1{closing}".encode()


def with_deep(doc: dict[str, Any], name: str, depth: int) -> bytes:
    """``doc`` with field ``name`` nested ``depth`` levels deep."""
    return dumps({**doc, name: DEEP}).replace(f'"{DEEP}"'.encode(), nested(depth))


async def topic_values(settings: Settings, topic: str) -> list[dict]:
    """Every value on ``topic`` now, as JSON documents, oldest first within a partition."""
    return [orjson.loads(r.value) for r in await topic_records(settings, topic) if r.value is not None]


async def topic_records(settings: Settings, topic: str) -> list[ConsumerRecord]:
    """Every record on ``topic`` now, oldest first within a partition."""
    consumer = AIOKafkaConsumer(**settings.kafka.options("test"), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        return [r async for r in read_to_end(consumer, topic, await partitions_of(consumer, topic))]
    finally:
        await consumer.stop()


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, int]:
    """``app`` served on 127.0.0.1 at a free port: its runner (to clean up) and the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def read_results(provider: BatchProvider, batch_id: str) -> list[ItemOutcome]:
    """An ended batch's outcomes as settling reads them (a line that is no result left out), without the spool."""
    outcomes = [provider.result_format.outcome(line) async for run in provider.result_lines(batch_id) for line in run]
    return [outcome for outcome in outcomes if not isinstance(outcome, str)]
