"""A worker's ledger kept on its disk, against the embedded broker: a restart reads only what was written since,
and a kept file that does not match the topic is dropped, never trusted."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.publish import Publisher
from streams.settings import Settings
from streams.state.ledger import Ledger

pytestmark = pytest.mark.integration


async def new_topic(settings: Settings) -> str:
    topic = f"ledger-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()
    return topic


async def write(settings: Settings, topic: str, batch: str, chunks: int) -> list[str]:
    """Successes recorded as workers record them, a chunk of 20 a record; their custom_ids."""
    writer, publisher, written = Ledger(settings.kafka, topic), Publisher(settings.kafka), []
    await publisher.start()
    try:
        for chunk in range(chunks):
            ids = [f"{batch}-{chunk}-{n}" for n in range(20)]
            await publisher.publish([writer.record(batch, chunk, "b1", list(ids))])
            written.extend(ids)
    finally:
        await publisher.stop()
    return written


async def started(settings: Settings, topic: str, folder: Path) -> tuple[Ledger, int]:
    ledger = Ledger(settings.kafka, topic, folder, in_memory=30, keep=True)
    return ledger, await ledger.start()


def settings_of(broker_port: int) -> Settings:
    return Settings.from_env({"TIERLINE_BROKER": f"kafka://127.0.0.1:{broker_port}"})


def test_a_restart_reads_only_what_was_written_since_and_knows_every_success(broker_port: int,
                                                                               tmp_path: Path) -> None:
    async def run() -> None:
        settings = settings_of(broker_port)
        topic = await new_topic(settings)
        before = await write(settings, topic, "before", 6)
        ledger, read = await started(settings, topic, tmp_path)
        assert read == 6 and not ledger.resumed
        await ledger.stop()
        since = await write(settings, topic, "since", 3)
        ledger, read = await started(settings, topic, tmp_path)
        try:
            assert read == 3 and ledger.resumed
            assert all(ledger.succeeded(cid) for cid in before + since) and not ledger.succeeded("never")
            assert ledger.succeeded_in(before[0]) == "b1"
        finally:
            await ledger.stop()

    asyncio.run(asyncio.wait_for(run(), 60))


@pytest.mark.parametrize("other", ["more records", "fewer records"])
def test_a_kept_file_of_another_topic_is_dropped_and_the_topic_read_whole(broker_port: int, tmp_path: Path,
                                                                          other: str) -> None:
    """As after the topic was deleted and made again, or the worker pointed at another cluster."""
    async def run() -> None:
        settings = settings_of(broker_port)
        first, second = await new_topic(settings), await new_topic(settings)
        first_ids = await write(settings, first, "first", 4)
        second_ids = await write(settings, second, "second", 6 if other == "more records" else 1)
        ledger, _ = await started(settings, first, tmp_path)
        await ledger.stop()
        kept = ledger.kept_path
        assert kept is not None
        shutil.copy(kept, kept.with_name(f"ledger-{second}.sqlite"))
        ledger, read = await started(settings, second, tmp_path)
        try:
            assert not ledger.resumed and read == len(second_ids) // 20
            assert all(ledger.succeeded(cid) for cid in second_ids)
            assert not any(ledger.succeeded(cid) for cid in first_ids)  # nothing of the file was trusted
        finally:
            await ledger.stop()

    asyncio.run(asyncio.wait_for(run(), 60))
