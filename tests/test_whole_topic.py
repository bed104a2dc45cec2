"""Reading a topic to its end on the embedded broker, whose listed end offsets can fall short."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.whole_topic import read_to_end

pytestmark = pytest.mark.integration


async def _write_batches_then_read(bootstrap: str) -> tuple[list[bytes], list[bytes]]:
    topic = f"whole-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()
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
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        read = [record.value async for record in read_to_end(consumer, topic, {0, 1})]
    finally:
        await consumer.stop()
    return written, read


def test_every_record_of_a_partitions_last_batch_is_read(broker_port: int) -> None:
    written, read = asyncio.run(_write_batches_then_read(f"127.0.0.1:{broker_port}"))
    assert sorted(read) == sorted(written)
    assert len(read) == len(set(read))  # none twice
