"""Topics are tierline's to create: commands never have the broker create one, and a worker refuses topics
that do not have the partitions it needs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.local.stack import tierline_argv
from streams.local.workload import make_items

pytestmark = pytest.mark.integration


def topics_on(port: int) -> set[str]:
    async def listed() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()
    return asyncio.run(listed())


def tierline(port: int, prefix: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tierline_argv(*args), capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TIERLINE_BROKER": f"kafka://127.0.0.1:{port}",
                               "TIERLINE_TOPIC_PREFIX": prefix, **env})


def test_commands_on_a_prefix_with_no_topics_say_so_and_create_none(broker_port: int, tmp_path: Path) -> None:
    prefix = f"none{uuid.uuid4().hex[:6]}."
    items = tmp_path / "items.jsonl"
    items.write_bytes(orjson.dumps(make_items(1, "orphan")[0]) + b"\n")
    for args in (("tail", "results", "--idle", "1"), ("submit", str(items)), ("replay",)):
        done = tierline(broker_port, prefix, *args)
        assert done.returncode == 1, (args, done.stderr)
        assert f"no topic {prefix}" in done.stderr and "tierline worker" in done.stderr, done.stderr
    assert not {topic for topic in topics_on(broker_port) if topic.startswith(prefix)}


def test_a_worker_refuses_topics_with_another_partition_count_naming_them(broker_port: int, tmp_path: Path) -> None:
    prefix = f"two{uuid.uuid4().hex[:6]}."

    async def made_by_someone_else() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{broker_port}")
        await admin.start()
        try:
            await admin.create_topics([NewTopic(f"{prefix}requests", 2, 1)])
        finally:
            await admin.close()

    asyncio.run(made_by_someone_else())
    done = tierline(broker_port, prefix, "worker", TIERLINE_PARTITIONS="4", TIERLINE_DATA_DIR=str(tmp_path),
                    TIERLINE_APP_ID=prefix.rstrip("."))
    assert done.returncode == 1, done.stderr
    assert f"topic {prefix}requests has 2 partitions, and tierline needs 4 (TIERLINE_PARTITIONS)" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_topic_a_worker_makes_carries_the_prefix_faust_s_own_too(workers, broker_port: int) -> None:  # type: ignore[no-untyped-def]
    env = workers.env()
    workers.start(env)
    prefix, app_id = env["TIERLINE_TOPIC_PREFIX"], env["TIERLINE_APP_ID"]
    deadline = time.monotonic() + 60
    while f"{prefix}{app_id}-__assignor-__leader" not in (topics := topics_on(broker_port)):
        assert time.monotonic() < deadline, "Faust never declared its leader topic"
        time.sleep(0.5)
    assert not {topic for topic in topics if app_id in topic and not topic.startswith(prefix)}


def test_topics_are_made_to_take_tierlines_records_and_a_smaller_limit_is_refused(  # type: ignore[no-untyped-def]
        workers, broker_port: int, tmp_path: Path) -> None:
    env = workers.env()  # creates the topics

    async def limits() -> dict[str, str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{broker_port}")
        await admin.start()
        try:
            [answer] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC,
                                                                    env["TIERLINE_TOPIC_PREFIX"] + "results")])
            return {entry[0]: entry[1] for entry in answer.resources[0][4]}
        finally:
            await admin.close()

    assert asyncio.run(limits())["max.message.bytes"] == "1048588"  # Kafka's default, for tierline's 1,000,000
    done = tierline(broker_port, env["TIERLINE_TOPIC_PREFIX"], "worker", TIERLINE_DATA_DIR=str(tmp_path),
                    TIERLINE_APP_ID=env["TIERLINE_APP_ID"], TIERLINE_KAFKA_MAX_RECORD_BYTES="2000000")
    assert done.returncode == 1, done.stderr
    assert "takes records of at most 1,048,588 bytes, and tierline writes records up to 2,000,000" in done.stderr
