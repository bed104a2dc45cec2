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

from streams.kafka.connection import KafkaConnection
from streams.kafka.partitioner import partition_of

__all__ = ["Publisher", "Message", "RecordTooLarge"]



class Message(NamedTuple):
    """One record to publish."""

    topic: str
    key: str | None  # None: no key (only ``tierline submit --allow-invalid`` sends such records)
    value: Any  # bytes, a record orjson serialises, or None to delete the key
    partition: int | None = None  # None: by the key's hash, as Kafka's own clients place keyed records
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None  # None: the time it is sent


PUBLISHES_AT_ONCE = 16
_NO_HEADERS: list[tuple[str, bytes]] = []  # never changed: aiokafka only reads it


class RecordTooLarge(ValueError):
    """A record that would pass the size every topic of tierline's allows."""


class Publisher:
    """A shared producer for every event tierline emits."""

    def __init__(self, kafka: KafkaConnection, role: str = "publisher") -> None:
        self._kafka, self._role = kafka, role
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, int] = {}  # per topic, its partition count
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
        for topic, key, value, partition, headers, timestamp_ms in messages:
            data = value if value is None or isinstance(value, bytes) else orjson.dumps(value)
            key_bytes = None if key is None else key.encode()
            if (size := len(key_bytes or b"") + len(data or b"")) > limit:  # the writer's to prevent; never stuck
                raise RecordTooLarge(f"a record for {topic} (key {(key or '')[:80]!r}) takes {size} bytes, more "
                                     f"than TIERLINE_KAFKA_MAX_RECORD_BYTES ({limit})")
            if partition is None:
                partitions = self._partitions.get(topic) or await self._partitions_of(topic)
                # A keyless record goes to each partition in turn, as the messages come.
                partition = count % partitions if key_bytes is None else partition_of(key_bytes, partitions)
            batch = building.get((topic, partition))
            if batch is None:
                batch = building[topic, partition] = producer.create_batch()
            listed = list(headers) if headers else _NO_HEADERS  # aiokafka's builder takes a list
            if batch.append(key=key_bytes, value=data, timestamp=timestamp_ms, headers=listed) is None:
                # Full: send it and start the next one (a first message always fits).
                delivered.append(await producer.send_batch(batch, topic, partition=partition))
                batch = building[topic, partition] = producer.create_batch()
                batch.append(key=key_bytes, value=data, timestamp=timestamp_ms, headers=listed)
            count += 1
        for (topic, partition), batch in building.items():
            delivered.append(await producer.send_batch(batch, topic, partition=partition))
        if delivered:
            await asyncio.gather(*delivered)
        return count

    async def publish_one(self, message: Message) -> int:
        """Send one message and wait for the broker's acknowledgement; return its offset."""
        assert self._producer is not None, "Publisher.start() first"
        topic, key, value, partition, headers, timestamp_ms = message
        data = value if value is None or isinstance(value, bytes) else orjson.dumps(value)
        key_bytes = None if key is None else key.encode()
        if partition is None and key_bytes is not None:
            partition = partition_of(key_bytes, self._partitions.get(topic) or await self._partitions_of(topic))
        async with self._turns:
            sent = await self._producer.send_and_wait(topic, data, key=key_bytes, partition=partition,
                                                      timestamp_ms=timestamp_ms, headers=list(headers) or None)
        return int(sent.offset)

    async def _partitions_of(self, topic: str) -> int:
        """How many partitions ``topic`` has (numbered from 0, as Kafka numbers them), asked once."""
        assert self._producer is not None
        count = self._partitions[topic] = len(await self._producer.partitions_for(topic))
        return count
