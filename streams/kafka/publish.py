"""Bulk publishing: record batches built per partition, one wait for all of them.

``AIOKafkaProducer.send`` costs a metadata check, a partitioner call and a
future per message, which is most of what emitting a batch's results costs.
Here messages go straight into one record batch per topic and partition
(``create_batch`` / ``send_batch``), so emitting N events costs N appends and
a handful of produce requests.

At most ``PUBLISHES_AT_ONCE`` publish calls send at a time; the others wait their turn here. aiokafka
queues one record batch per partition and gives up (``KafkaTimeoutError``) on a send that waits longer
than its request timeout for the ones ahead of it, which a thousand small batches' records, written
at once, did.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable, NamedTuple

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from streams.kafka.connection import KafkaConnection

__all__ = ["Publisher", "Message", "RecordTooLarge"]



class Message(NamedTuple):
    """One record to publish."""

    topic: str
    key: str
    value: Any  # bytes, a record orjson serialises, or None to delete the key
    partition: int | None = None  # None: by the key's hash, as Kafka's own clients place keyed records

_by_key = DefaultPartitioner()  # murmur2, as Kafka's own clients place keyed messages


PUBLISHES_AT_ONCE = 16


class RecordTooLarge(ValueError):
    """A record that would pass the size every topic of tierline's allows."""


class Publisher:
    """A shared producer for every event tierline emits."""

    def __init__(self, kafka: KafkaConnection, role: str = "publisher") -> None:
        self._kafka, self._role = kafka, role
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, list[int]] = {}
        self._turns = asyncio.Semaphore(PUBLISHES_AT_ONCE)

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds to the running event loop.
        self._producer = AIOKafkaProducer(
            **self._kafka.options(self._role),
            acks="all",
            linger_ms=5,
            max_batch_size=self._kafka.max_record_bytes,
            max_request_size=8 << 20,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def reachable(self) -> bool:
        """Whether a broker answers a metadata request now (of every topic: none is created by asking)."""
        assert self._producer is not None, "Publisher.start() first"
        try:
            await self._producer.client.fetch_all_metadata()
        except (KafkaError, OSError, asyncio.TimeoutError):
            return False
        return True

    async def publish(self, messages: Iterable[Message]) -> int:
        """Send every message and wait until the broker has acknowledged them all."""
        async with self._turns:
            return await self._publish(messages)

    async def _publish(self, messages: Iterable[Message]) -> int:
        producer = self._producer
        assert producer is not None, "Publisher.start() first"
        building: dict[tuple[str, int], Any] = {}
        delivered: list[asyncio.Future[Any]] = []
        count = 0
        limit = self._kafka.max_record_bytes
        for topic, key, value, partition in messages:
            data = value if value is None or isinstance(value, bytes) else orjson.dumps(value)
            key_bytes = key.encode()
            if (size := len(key_bytes) + len(data or b"")) > limit:  # the writer's to prevent; never a stuck send
                raise RecordTooLarge(f"a record for {topic} (key {key[:80]!r}) takes {size} bytes, more than "
                                     f"TIERLINE_KAFKA_MAX_RECORD_BYTES ({limit})")
            if partition is None:
                partition = await self._partition_of(topic, key_bytes)
            batch = building.get((topic, partition))
            if batch is None:
                batch = building[topic, partition] = producer.create_batch()
            if batch.append(key=key_bytes, value=data, timestamp=None) is None:
                # Full: send it and start the next one (a first message always fits).
                delivered.append(await producer.send_batch(batch, topic, partition=partition))
                batch = building[topic, partition] = producer.create_batch()
                batch.append(key=key_bytes, value=data, timestamp=None)
            count += 1
        for (topic, partition), batch in building.items():
            delivered.append(await producer.send_batch(batch, topic, partition=partition))
        if delivered:
            await asyncio.gather(*delivered)
        return count

    async def publish_one(self, message: Message) -> int:
        """Send one message and wait for the broker's acknowledgement; return its offset."""
        assert self._producer is not None, "Publisher.start() first"
        topic, key, value, partition = message
        data = value if value is None or isinstance(value, bytes) else orjson.dumps(value)
        async with self._turns:
            sent = await self._producer.send_and_wait(topic, data, key=key.encode(), partition=partition)
        return int(sent.offset)

    async def _partition_of(self, topic: str, key: bytes) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            assert self._producer is not None
            partitions = self._partitions[topic] = sorted(await self._producer.partitions_for(topic))
        partition: int = _by_key(key, partitions, partitions)
        return partition
