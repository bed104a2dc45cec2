"""Fixtures: the embedded broker, S3 server and emulator for the session, a worker per test module."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

import orjson

from streams.local.stack import (
    broker_argv,
    embedded_env,
    free_port,
    running,
    s3_env,
    s3_server,
    spawn,
    stop,
    tierline_argv,
    wait_for_port,
)
from streams.cli.produce import publish_lines
from streams.settings import Settings
from streams.kafka.topics import ensure_topics


#: Fixtures that start the embedded broker, S3 server, emulator or workers: a test using any of them
#: (directly or through another fixture) is an integration test, whatever its module says.
STACK_FIXTURES = frozenset({"broker_port", "s3_port", "emulator_port", "paced_port", "workers", "start_worker"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    with running(broker_argv(port), port, log=tmp_path_factory.mktemp("broker") / "broker.log"):
        yield port


@pytest.fixture(scope="session")
def s3_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """moto's S3 server: where Bedrock jobs' input and output files live."""
    with s3_server(log=tmp_path_factory.mktemp("s3") / "s3.log") as port:
        yield port


#: Bedrock's minimum records per job in the shared emulator: 1, so that retried items run alone
#: as the other providers' do. The minimum itself is tested with an emulator of its own.
MIN_RECORDS = {"TIERLINE_BEDROCK_MIN_RECORDS": "1"}


def emulator_argv(port: int, batch_seconds: float, *args: str) -> list[str]:
    return tierline_argv("emulator", "--port", str(port), "--batch-seconds", str(batch_seconds),
                         "--bedrock-min-records", "1", *args)


@pytest.fixture(scope="session")
def emulator_port(tmp_path_factory: pytest.TempPathFactory, s3_port: int) -> Iterator[int]:
    port = free_port()
    with running(emulator_argv(port, 1), port, env=s3_env(s3_port),
                 log=tmp_path_factory.mktemp("emulator") / "emulator.log"):
        yield port


class Workers:
    """Worker processes on their own topics (a fresh prefix each), for one test module."""

    def __init__(self, broker_port: int, emulator_port: int, tmp: pytest.TempPathFactory, s3_port: int) -> None:
        self._broker_port, self._emulator_port, self._tmp, self._s3_port = broker_port, emulator_port, tmp, s3_port
        self.procs: list[subprocess.Popen] = []

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
        env = {**env, **overrides, "TIERLINE_WEB_PORT": str(free_port())}
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


@pytest.fixture(scope="module")
def workers(broker_port: int, emulator_port: int, s3_port: int,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    pool = Workers(broker_port, emulator_port, tmp_path_factory, s3_port)
    yield pool
    pool.stop_all()


@pytest.fixture(scope="module")
def start_worker(workers: Workers) -> Callable[..., Settings]:
    """Start a worker on its own topics; stopped at the end of the module."""

    def start(**overrides: str) -> Settings:
        env = workers.env(**overrides)
        proc = workers.start(env)
        return Settings.from_env({**env, "TIERLINE_WEB_PORT": str(proc.web_port)})  # type: ignore[attr-defined]

    return start
