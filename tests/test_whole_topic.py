"""Reading a topic to its end on the embedded broker, whose listed end offsets can fall short."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.whole_topic import WholeTopic, read_to_end, reader
from streams.settings import Settings

pytestmark = pytest.mark.integration


async def _new_topic(bootstrap: str) -> str:
    """A topic of two partitions, of its own."""
    topic = f"whole-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()
    return topic


async def _read_whole(bootstrap: str, topic: str, **options: int) -> list[ConsumerRecord]:
    """Every record of ``topic``, read to its end by a ``reader`` as tierline's are."""
    consumer = reader(Settings.from_env({"TIERLINE_BROKER": f"kafka://{bootstrap}"}).kafka, "test", **options)
    await consumer.start()
    try:
        return [record async for record in read_to_end(consumer, topic, {0, 1})]
    finally:
        await consumer.stop()


async def _write_batches_then_read(bootstrap: str) -> tuple[list[bytes], list[bytes]]:
    topic = await _new_topic(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    written = []
    for partition, sizes in ((0, (1, 3)), (1, (5,))):  # each ends with a batch of several records
        for size in sizes:
            batch = producer.create_batch()
            for _ in range(size):
                value = f"{partition}-{len(written)}".encode()
                batch.append(key=None, value=value, timestamp=None)
                written.append(value)
            await (await producer.send_batch(batch, topic, partition=partition))
    await producer.stop()
    return written, [record.value for record in await _read_whole(bootstrap, topic)]


def test_every_record_of_a_partitions_last_batch_is_read(broker_port: int) -> None:
    written, read = asyncio.run(_write_batches_then_read(f"127.0.0.1:{broker_port}"))
    assert sorted(read) == sorted(written)
    assert len(read) == len(set(read))  # none twice


async def _topic_of_ten(bootstrap: str) -> str:
    """A new topic holding ten records, one at a time, across its two partitions."""
    topic = await _new_topic(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    for i in range(10):
        await producer.send_and_wait(topic, str(i).encode(), partition=i % 2)
    await producer.stop()
    return topic


async def _read_with_long_fetch_wait(bootstrap: str) -> tuple[int, int]:
    """Records written, and read by a ``reader`` whose broker may hold a fetch for a minute."""
    topic = await _topic_of_ten(bootstrap)
    return 10, len(await _read_whole(bootstrap, topic, fetch_max_wait_ms=60_000))


def test_a_reader_is_never_held_by_the_brokers_fetch_wait(broker_port: int) -> None:
    # A consumer fetches an assigned partition before it is placed; from the partition's end (aiokafka's
    # default reset) the broker holds that fetch for its whole wait, and the placing with it. A reader
    # fetches from the start, which answers at once: the read is done long before the wait would end.
    written, read = asyncio.run(asyncio.wait_for(_read_with_long_fetch_wait(f"127.0.0.1:{broker_port}"), 30))
    assert read == written


async def _read_empty_with_long_fetch_wait(bootstrap: str) -> int:
    topic = await _new_topic(bootstrap)
    return len(await _read_whole(bootstrap, topic, fetch_max_wait_ms=60_000))


def test_an_empty_topic_is_read_to_its_end_without_waiting_out_the_brokers_fetch_wait(broker_port: int) -> None:
    # Its partitions are at their end from the start: a fetch there is held for the whole wait, and the listing of
    # its offsets would queue behind it (0.5 s at every start with aiokafka's wait; a minute here).
    assert asyncio.run(asyncio.wait_for(_read_empty_with_long_fetch_wait(f"127.0.0.1:{broker_port}"), 30)) == 0


class Kept(WholeTopic):
    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(Settings.from_env({"TIERLINE_BROKER": f"kafka://{bootstrap}"}).kafka, topic)
        self.values: list[bytes] = []

    def take(self, record: ConsumerRecord) -> None:
        self.values.append(record.value)


async def _follow_then_catch_up(bootstrap: str) -> tuple[list[bytes], list[bytes], int]:
    topic = await _new_topic(bootstrap)
    follower = Kept(bootstrap, topic)
    await follower.start()
    try:
        assert await follower.catch_up_to_end() == 0  # nothing new: back at once, not after a fetch wait
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        written = []
        for partition, size in ((0, 2), (1, 4), (0, 3)):  # the last of each partition a batch of several
            batch = producer.create_batch()
            for _ in range(size):
                written.append(f"{partition}-{len(written)}".encode())
                batch.append(key=None, value=written[-1], timestamp=None)
            await (await producer.send_batch(batch, topic, partition=partition))
        await producer.stop()
        read = await follower.catch_up_to_end()
        return written, follower.values, read
    finally:
        await follower.stop()


def test_a_follower_catches_up_with_everything_written_before_it_asks(broker_port: int) -> None:
    written, values, read = asyncio.run(asyncio.wait_for(_follow_then_catch_up(f"127.0.0.1:{broker_port}"), 30))
    assert sorted(values) == sorted(written) and read == len(written)


async def _catch_up_asked_before_the_start(bootstrap: str) -> tuple[int, int, int]:
    follower = Kept(bootstrap, await _topic_of_ten(bootstrap))
    asked = asyncio.create_task(follower.catch_up_to_end())  # another agent, taking its partitions over
    await asyncio.sleep(0)
    try:
        return await follower.start(), await asked, len(follower.values)
    finally:
        await follower.stop()


def test_a_catch_up_asked_while_the_topic_is_first_read_waits_for_that_read(broker_port: int) -> None:
    started, caught_up, taken = asyncio.run(asyncio.wait_for(
        _catch_up_asked_before_the_start(f"127.0.0.1:{broker_port}"), 30))
    assert (started, caught_up, taken) == (10, 0, 10)  # read once, by the start, not shared between the two
