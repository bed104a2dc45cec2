"""``tierline replay``: publish what ``tierline.requests`` holds once more, as an operator reprocesses.

Without a reprocess name the items go through as they are, and a replay re-runs
what has not succeeded and nothing else: the ledger of successes is read first,
and an item that succeeded is not published again (the worker would skip it).
With ``reprocess`` set, each item carries that name and is processed again even
if it succeeded, once per name, its attempts counted from 1 and its events
marked with the name; an item that already succeeded under that name is not
published again either.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Iterator

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from core.request_head import head_of
from schemas import run_key
from streams.kafka.homes import first_read
from streams.kafka.publish import Message, Publisher
from streams.kafka.topics import require_topics
from streams.kafka.whole_topic import chunks_to_end, partitions_of, reader
from streams.settings import Settings
from streams.state.ledger import Ledger

__all__ = ["replay", "Replayed"]


@dataclass(slots=True)
class Replayed:
    published: int = 0
    succeeded: int = 0  # left out: each already succeeded (under the re-run's name, if one was given)
    not_work_items: int = 0  # messages that were dead-lettered the first time
    copies: int = 0  # left out: forwarded to their home by a worker, their original published again instead


async def replay(settings: Settings, reprocess: str | None = None, custom_ids: frozenset[str] = frozenset(),
                 since_ms: int | None = None) -> Replayed:
    """Read ``tierline.requests`` from the start (or ``since_ms``) to its current end and publish again
    every item that has not succeeded."""
    await require_topics(settings, "requests", "ledger")
    ledger = Ledger.of(settings)
    try:
        return await _publish_again(settings, ledger, reprocess, custom_ids, since_ms)
    finally:
        await ledger.stop()


async def _publish_again(settings: Settings, ledger: Ledger, reprocess: str | None, custom_ids: frozenset[str],
                         since_ms: int | None) -> Replayed:
    topic = settings.topics.requests
    consumer = reader(settings.kafka, "replay", fetch_max_bytes=32 << 20)
    publisher = _OnDemand(Publisher(settings.kafka, "replay"))
    counts = Replayed()
    read: dict[int, tuple[int, int]] = {}  # per partition, the offsets this replay reads: from, to

    async def note_read(_consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int],
                        ends: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        read.update((tp.partition, (starts[tp], ends[tp])) for tp in starts)
        return starts

    # Every success so far, as a worker knows them: read while the reader finds the requests' ends.
    loading = asyncio.create_task(ledger.start())
    try:
        await consumer.start()
        # Only what is there now: the items published again come after the end read here.
        async for records in chunks_to_end(consumer, topic, await partitions_of(consumer, topic), since_ms,
                                           note_read):
            await loading
            counts.published += await publisher.publish(
                list(_again(records, topic, reprocess, custom_ids, ledger, counts, read)))
        await loading  # its errors are the replay's, whatever the topic held
    finally:
        loading.cancel()  # nothing, once it is done
        await asyncio.gather(loading, return_exceptions=True)
        await publisher.stop()
        await consumer.stop()
    return counts


def _again(records: list[ConsumerRecord], topic: str, reprocess: str | None, custom_ids: frozenset[str],
           ledger: Ledger, counts: Replayed, read: dict[int, tuple[int, int]]) -> Iterator[Message]:
    """The records to publish again; ``read``: per partition, the offsets this replay reads (from, to)."""
    succeeded = ledger.succeeded
    for record in records:
        # A copy a worker forwarded to its home partition (streams.kafka.homes), whose original is read here too:
        # the original alone goes again, or the item would be published twice.
        if record.headers and (first := first_read(record)) is not None and \
                (span := read.get(first[0])) is not None and span[0] <= first[1] < span[1]:
            counts.copies += 1
            continue
        # Most of a replay has succeeded: its run is read from the head alone (core.request_head).
        if (head := head_of(record.value)) is not None and (not custom_ids or head.custom_id in custom_ids) and \
                succeeded(run_key(head.custom_id, reprocess or head.reprocess)):
            counts.succeeded += 1
            continue
        try:
            doc = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            doc = None
        custom_id = doc.get("custom_id") if isinstance(doc, dict) else None
        if not isinstance(custom_id, str) or not custom_id:
            counts.not_work_items += 1
            continue
        if custom_ids and custom_id not in custom_ids:
            continue
        name = reprocess or doc.get("reprocess")  # an item of an earlier re-run is that re-run's
        if (name is None or isinstance(name, str) and name) and ledger.succeeded(run_key(custom_id, name)):
            counts.succeeded += 1  # the worker would skip it
            continue
        if reprocess:
            doc["reprocess"] = reprocess
            yield Message(topic, custom_id, orjson.dumps(doc))
        else:
            yield Message(topic, custom_id, record.value)  # as it was, byte for byte


class _OnDemand:
    """The publisher, started for the first message to send: a replay of items that all succeeded
    sends none."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher, self._started = publisher, False

    async def publish(self, messages: list[Message]) -> int:
        if not messages:
            return 0
        if not self._started:
            self._started = True  # stopped in any case, even if starting fails half-way
            await self._publisher.start()
        return await self._publisher.publish(messages)

    async def stop(self) -> None:
        if self._started:
            await self._publisher.stop()
