"""Fixtures: the embedded broker, S3 server and emulator for the session, a worker per test module.

What the tests share besides fixtures is in ``tests/support.py``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from streams.local.stack import broker_argv, free_port, running, s3_env, s3_server
from streams.settings import Settings
from tests.support import Workers, emulator_argv


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


@pytest.fixture(scope="session")
def emulator_port(tmp_path_factory: pytest.TempPathFactory, s3_port: int) -> Iterator[int]:
    port = free_port()
    with running(emulator_argv(port, 1), port, env=s3_env(s3_port),
                 log=tmp_path_factory.mktemp("emulator") / "emulator.log"):
        yield port


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


#: The provider × failure matrix's cells, as their reports come in (``tests/test_provider_matrix.py``).
MATRIX: dict[tuple[str, str], str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A matrix cell's verdict; a cell whose test failed, FAILED (in the controller, from every xdist worker)."""
    if "test_provider_matrix.py::test_cell[" not in report.nodeid:
        return
    for name, value in report.user_properties:
        if name == "matrix":
            provider, mode, verdict = value
            MATRIX[provider, mode] = verdict
    if report.failed:
        provider, mode = report.nodeid.rpartition("[")[2].rstrip("]").split("-", 1)
        MATRIX[provider, mode] = "FAILED"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The provider × failure matrix, as the run found it."""
    if not MATRIX:
        return
    from core.table import text_table  # the tables the CLI prints
    from tests.test_provider_matrix import MODES, PROVIDERS

    rows = [[mode, *(MATRIX.get((provider, mode), "not run").split(":")[0] for provider in PROVIDERS)]
            for mode in MODES]
    terminalreporter.section("provider × failure matrix")
    for line in text_table(["mode", *PROVIDERS], rows):
        terminalreporter.write_line(line)
    for (provider, mode), said in sorted(MATRIX.items()):
        if said.startswith(("cannot", "not played")):
            terminalreporter.write_line(f"{provider}, {mode}: {said}")
