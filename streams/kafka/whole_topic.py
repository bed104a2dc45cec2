"""Reading topics to their current end: every batch record, every ledger entry, every request again.

``read_to_end`` serves the batch log (a worker's partitions, on assignment), the
replay command (the requests topic, from a time) and ``WholeTopic``, which reads
a whole topic and then follows it, for state that every worker needs all of.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streams.kafka.connection import KafkaConnection

__all__ = ["WholeTopic", "reader", "partitions_of", "read_to_end", "chunks_to_end", "assign_bounded", "record_at"]

log = structlog.get_logger(__name__)

PROBE_S = 10.0  # how long to wait for a partition's high watermark before trusting the listing


def reader(kafka: KafkaConnection, role: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer for ``read_to_end``: in no group, committing nothing, reading where it is placed.

    Its offset reset is ``earliest``, not aiokafka's ``latest``. A partition is assigned before it is
    placed, and the fetch aiokafka sends meanwhile, at the end of the partition, is held by the broker for
    its whole fetch wait (500 ms) before the placing can take effect: reading a topic of a few records to
    its end took 0.7 s, most of it that wait, at each worker's start for each topic it reads whole and at
    each partition it is assigned. Fetched from the start, the partition answers at once. And a position
    the log has dropped since (retention, compaction) is then read from the log's start, never skipped.
    """
    return AIOKafkaConsumer(**kafka.options(role), group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest", **options)


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """A topic's partitions. Ask before ``assign``: from then on aiokafka keeps the metadata of
    the assigned topics only, and a topic not among them has no partitions."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer.topics()  # fetch metadata once
        partitions = consumer.partitions_for_topic(topic)
    return set(partitions or ())


async def assign_bounded(consumer: AIOKafkaConsumer, tps: list[TopicPartition]
                         ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Assign ``tps``, and return each one's first offset and the offset after its last record, as of now. The
    partitions are left paused: the caller places them (``seek``), then resumes them.

    They are paused while their offsets are listed: aiokafka fetches an assigned partition at once, and the
    broker holds a fetch at a partition's end for the whole fetch wait (500 ms), with the listing queued behind
    it on the same connection (0.5 s at every start, for an empty ledger).

    Tansu answers ListOffsets with the offset after the *first* record of a partition's last
    record batch, so a batch of several records would be cut short. A fetch's high watermark
    is right: fetch the last record the listing admits and take the larger of the two. A fetch
    answers with the whole record batch holding that record (thousands of records where a
    producer batched them): at most one record of each is decoded (``max_records``), the rest is
    dropped unread by the seek that follows.
    """
    consumer.assign(tps)
    consumer.pause(*tps)
    starts: dict[TopicPartition, int] = await consumer.beginning_offsets(tps)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    pending = {tp for tp in tps if ends[tp] > starts[tp]}
    for tp in pending:
        consumer.seek(tp, ends[tp] - 1)
    consumer.resume(*pending)  # a partition with records answers a fetch at once
    deadline = time.monotonic() + PROBE_S
    while pending and time.monotonic() < deadline:
        await consumer.getmany(*pending, timeout_ms=200, max_records=1)
        for tp in list(pending):
            if (highwater := consumer.highwater(tp)) is not None:
                ends[tp] = max(ends[tp], highwater)
                consumer.pause(tp)
                pending.discard(tp)
    return starts, ends


async def record_at(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> ConsumerRecord | None:
    """The first record at or after ``offset`` of a paused, assigned partition (paused again after), or None if
    none comes within ``PROBE_S``."""
    consumer.seek(tp, offset)
    consumer.resume(tp)
    try:
        deadline = time.monotonic() + PROBE_S
        while time.monotonic() < deadline:
            if records := (await consumer.getmany(tp, timeout_ms=200, max_records=1)).get(tp):
                return records[0]
        return None
    finally:
        consumer.pause(tp)


#: Where to start reading each partition, given each one's first offset and end (``chunks_to_end``).
StartsAt = Callable[[AIOKafkaConsumer, dict[TopicPartition, int], dict[TopicPartition, int]],
                    Awaitable[dict[TopicPartition, int]]]


async def read_to_end(consumer: AIOKafkaConsumer, topic: str, partitions: set[int],
                      since_ms: int | None = None, starts_at: StartsAt | None = None) -> AsyncIterator[ConsumerRecord]:
    """Every record of these partitions, one at a time, as ``chunks_to_end`` reads them."""
    async for chunk in chunks_to_end(consumer, topic, partitions, since_ms, starts_at):
        for record in chunk:
            yield record


async def chunks_to_end(consumer: AIOKafkaConsumer, topic: str, partitions: set[int], since_ms: int | None = None,
                        starts_at: StartsAt | None = None) -> AsyncIterator[list[ConsumerRecord]]:
    """Every record of these partitions, from the beginning (or ``since_ms``, or where ``starts_at`` says, given
    each partition's first offset and end, its partitions paused meanwhile) to their end as of now, in
    the runs a fetch returns (one partition's each, in offset order): a reader of many records takes them
    a run at a time rather than a step of an async generator each.

    Records written meanwhile are left for later: the consumer stays assigned and positioned
    after the last record yielded, so ``getmany`` goes on from there.
    """
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    # Explicit offsets: a seek_to_beginning still pending can leave position() at the end.
    starts, ends = await assign_bounded(consumer, tps)
    if since_ms is not None:
        found = await consumer.offsets_for_times({tp: since_ms for tp in tps})
        starts = {tp: found[tp].offset if found[tp] else ends[tp] for tp in tps}
    if starts_at is not None:
        starts = await starts_at(consumer, starts, ends)
    for tp in tps:
        consumer.seek(tp, starts[tp])
    consumer.resume(*tps)
    remaining = {tp for tp in tps if starts[tp] < ends[tp]}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=1000)
        for tp, records in batch.items():
            end = ends[tp]
            if records and records[-1].offset >= end:
                cut = next(i for i, record in enumerate(records) if record.offset >= end)
                consumer.seek(tp, records[cut].offset)  # not ours to read yet
                records = records[:cut]
            if records:
                yield records
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)


class WholeTopic:
    """Subclasses say what a record means (``take``); this reads them all, then what comes after."""

    def __init__(self, kafka: KafkaConnection, topic: str) -> None:
        self._kafka = kafka
        self.topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        self._lister: AIOKafkaConsumer | None = None  # lists the partitions' ends (``catch_up_to_end``)
        self.loaded = False  # read to the end it had when started
        self._started = asyncio.Event()  # set with ``loaded``

    def take(self, record: ConsumerRecord) -> None:
        raise NotImplementedError

    async def starts_at(self, consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int],
                        ends: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Where ``start`` reads each partition from: its first record (what a subclass keeps may say otherwise)."""
        return starts

    async def start(self) -> int:
        """Read the topic from the beginning (or where ``starts_at`` says) to its current end; return how many
        records."""
        self._consumer = reader(self._kafka, f"reader-{self.topic}", fetch_max_bytes=16 << 20,
                                max_partition_fetch_bytes=8 << 20)
        await self._consumer.start()
        read = 0
        async for record in read_to_end(self._consumer, self.topic, await partitions_of(self._consumer, self.topic),
                                        starts_at=self.starts_at):
            self.take(record)
            read += 1
        self.loaded = True
        self._started.set()
        return read

    async def catch_up(self, timeout_s: float = 0.0) -> int:
        """Take in what was written since the last call."""
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=50_000)
        read = 0
        for records in batch.values():
            for record in records:
                self.take(record)
                read += 1
        return read

    async def catch_up_to_end(self, timeout_s: float = 30.0) -> int:
        """Take in everything written before this call: each partition up to its end as listed now, or as the
        last fetch found it (Tansu's listing can fall short by a record batch). A broker that does not answer
        within ``timeout_s`` leaves it at what was read by then (said in the log).

        The ends are listed by a consumer of their own, with nothing assigned: the follower always has a fetch
        at the end in flight, which the broker holds for its fetch wait, and a listing would queue behind it.
        Called while ``start`` still reads (another agent taking its partitions over meanwhile), it waits for
        that first: two readers of one consumer would each take a share of its records."""
        await self._started.wait()
        consumer = self._consumer
        assert consumer is not None
        if self._lister is None:
            self._lister = reader(self._kafka, f"lister-{self.topic}")
            await self._lister.start()
        tps = sorted(consumer.assignment())
        ends: dict[TopicPartition, int] = await self._lister.end_offsets(tps)
        deadline, read = time.monotonic() + timeout_s, 0
        while behind := [tp for tp in tps if await consumer.position(tp) < max(ends[tp], consumer.highwater(tp) or 0)]:
            if time.monotonic() > deadline:
                log.warning("caught_up_short", topic=self.topic, partitions=[tp.partition for tp in behind],
                            timeout_s=timeout_s, doing="going on with what was read")
                break
            read += await self.catch_up(timeout_s=0.1)
        return read

    async def stop(self) -> None:
        for consumer in (self._consumer, self._lister):
            if consumer is not None:
                await consumer.stop()
