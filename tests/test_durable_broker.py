"""``tierline broker --data DIR``: topics, records and committed offsets survive a restart of the broker
and of the storage under it (SeaweedFS on local disk); what it starts ends with it, however it ends."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from streams.local.stack import free_port, tierline_argv, wait_for_port

pytestmark = pytest.mark.integration

RECORDS = 2_000
TPS = [TopicPartition("kept", 0), TopicPartition("kept", 1)]


class Broker:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with (self.folder.parent / "broker-command.log").open("ab") as log:
            self.proc = subprocess.Popen(tierline_argv("broker", "--data", str(self.folder), "--port", str(self.port)),
                                         stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        wait_for_port(self.port, 120, self.proc)
        return self.proc

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    kept = Broker(tmp_path / "kafka", free_port())
    yield kept
    if kept.proc is not None and kept.proc.poll() is None:
        kept.stop()


async def write(port: int) -> None:
    bootstrap = f"127.0.0.1:{port}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("kept", 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send("kept", b"record %d" % n, key=b"%d" % n, partition=n % 2) for n in range(RECORDS)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="reader", enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(TPS)
        await consumer.commit({TPS[0]: OffsetAndMetadata(600, ""), TPS[1]: OffsetAndMetadata(400, "")})
    finally:
        await consumer.stop()


async def read(port: int) -> tuple[list[bytes], dict[TopicPartition, int | None]]:
    bootstrap = f"127.0.0.1:{port}"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="reader", enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(TPS)
        committed = {tp: await consumer.committed(tp) for tp in TPS}
        await consumer.seek_to_beginning(*TPS)
        values: list[bytes] = []
        while len(values) < RECORDS:
            batch = await consumer.getmany(timeout_ms=5_000)
            if not batch:
                break
            values += [record.value for records in batch.values() for record in records]
        return values, committed
    finally:
        await consumer.stop()


def test_records_and_committed_offsets_survive_a_restart_of_the_broker_and_its_storage(broker: Broker) -> None:
    broker.start()
    asyncio.run(write(broker.port))
    assert broker.stop() == 0  # Tansu, then SeaweedFS, stopped: nothing of either is left running
    broker.start()
    values, committed = asyncio.run(read(broker.port))
    assert sorted(values) == sorted(b"record %d" % n for n in range(RECORDS))
    assert committed == {TPS[0]: 600, TPS[1]: 400}


def test_a_second_broker_on_the_same_folder_is_refused_saying_why(broker: Broker) -> None:
    broker.start()
    second = subprocess.run(tierline_argv("broker", "--data", str(broker.folder), "--port", str(free_port())),
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert "is in use: is another tierline broker running on this folder" in second.stderr


def _children(folder: Path) -> dict[int, list[str]]:
    """SeaweedFS's and Tansu's PIDs, as the running broker command notes them (Tansu's just after it listens)."""
    deadline = time.monotonic() + 30
    while len(noted := orjson.loads((folder / "pids.json").read_bytes())["children"]) < 2:
        assert time.monotonic() < deadline, f"pids.json names {noted}"
        time.sleep(0.1)
    return {int(pid): argv for pid, argv in noted.items()}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _until_gone(pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[pid for pid in pids if _alive(pid)]}"
        time.sleep(0.1)


def test_what_the_broker_started_ends_with_it_when_it_is_killed_and_it_starts_again(broker: Broker) -> None:
    proc = broker.start()
    asyncio.run(write(broker.port))
    children = list(_children(broker.folder))
    assert len(children) == 2
    proc.kill()  # SIGKILL, as the OOM killer or a supervisor's last resort
    proc.wait(10)
    _until_gone(children)  # SeaweedFS and Tansu ended with it: no port held, no unsupervised broker
    broker.start()  # a supervisor's restart
    values, committed = asyncio.run(read(broker.port))
    assert sorted(values) == sorted(b"record %d" % n for n in range(RECORDS))
    assert committed == {TPS[0]: 600, TPS[1]: 400}


def test_a_start_ends_what_a_crashed_predecessor_left_running_on_the_folder(broker: Broker) -> None:
    proc = broker.start()
    children = list(_children(broker.folder))
    for pid in children:
        os.kill(pid, signal.SIGSTOP)  # they cannot act on their parent's death: left holding the ports
    proc.kill()
    proc.wait(10)
    assert all(_alive(pid) for pid in children)
    broker.port = free_port()
    broker.start()  # not refused for the ports they hold: it ended them first
    assert not any(_alive(pid) for pid in children)
    assert "left running by a broker that crashed" in (broker.folder.parent / "broker-command.log").read_text()
