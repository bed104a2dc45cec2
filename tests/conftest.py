"""Fixtures: the embedded broker and the emulator for the session, a worker per test module."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from streams.local import broker_argv, embedded_env, free_port, running, spawn, stop, tierline_argv, wait_for_port
from streams.settings import Settings
from streams.topics import ensure_topics


@pytest.fixture(scope="session")
def broker_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    with running(broker_argv(port), port, log=tmp_path_factory.mktemp("broker") / "broker.log"):
        yield port


@pytest.fixture(scope="session")
def emulator_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    argv = tierline_argv("emulator", "--port", str(port), "--batch-seconds", "1")
    with running(argv, port, log=tmp_path_factory.mktemp("emulator") / "emulator.log"):
        yield port


@pytest.fixture(scope="module")
def start_worker(broker_port: int, emulator_port: int,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Settings]]:
    """Start a worker on its own topics (a fresh prefix); stopped at the end of the module."""
    procs = []

    def start(**overrides: str) -> Settings:
        name = f"t{uuid.uuid4().hex[:8]}"
        folder: Path = tmp_path_factory.mktemp(name)
        env = embedded_env(broker_port, emulator_port, folder / "data", TIERLINE_TOPIC_PREFIX=f"{name}.",
                           TIERLINE_APP_ID=name, TIERLINE_BATCH_MAX_WAIT_S="1", TIERLINE_RETRY_BASE_DELAY_S="0.5",
                           TIERLINE_POLL_INITIAL_S="0.3", TIERLINE_POLL_MAX_S="1", **overrides)
        settings = Settings.from_env(env)
        asyncio.run(ensure_topics(settings))
        proc = spawn(tierline_argv("worker"), env, folder / "worker.log")
        procs.append(proc)
        wait_for_port(int(env["TIERLINE_WEB_PORT"]), 60, proc)
        return settings

    yield start
    for proc in procs:
        stop(proc)
