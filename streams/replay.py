"""``tierline replay``: publish what ``tierline.requests`` holds once more, as an operator reprocesses.

Without a reprocess name the items go through as they are, and the worker skips
every one that already succeeded: a replay re-runs what failed and nothing else.
With ``reprocess`` set, each item carries that name and is processed again even
if it succeeded, once per name, its attempts counted from 1 and its events
marked with the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.publish import Message, Publisher
from streams.settings import Settings

__all__ = ["replay", "Replayed"]

CHUNK = 10_000


@dataclass(slots=True)
class Replayed:
    published: int = 0
    not_work_items: int = 0  # messages that were dead-lettered the first time


async def replay(settings: Settings, reprocess: str | None = None, custom_ids: frozenset[str] = frozenset(),
                 since_ms: int | None = None) -> Replayed:
    """Read ``tierline.requests`` from the start (or ``since_ms``) to its current end and publish it again."""
    topic = settings.topic("requests")
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                enable_auto_commit=False, fetch_max_bytes=32 << 20)
    publisher = Publisher(settings.bootstrap_servers)
    await consumer.start()
    await publisher.start()
    counts = Replayed()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or
                                                        await _partitions(consumer, topic))]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        if since_ms is not None:
            for tp, found in (await consumer.offsets_for_times({tp: since_ms for tp in tps})).items():
                consumer.seek(tp, found.offset if found else ends[tp])
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            batch = await consumer.getmany(timeout_ms=1000, max_records=CHUNK)
            records = [r for tp, rs in batch.items() for r in rs if r.offset < ends[tp]]
            counts.published += await publisher.publish(_again(records, topic, reprocess, custom_ids, counts))
    finally:
        await publisher.stop()
        await consumer.stop()
    return counts


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer.topics()
    return consumer.partitions_for_topic(topic) or set()


def _again(records: list, topic: str, reprocess: str | None, custom_ids: frozenset[str],  # type: ignore[type-arg]
           counts: Replayed) -> Iterator[Message]:
    for record in records:
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
        if reprocess:
            doc["reprocess"] = reprocess
        yield (topic, custom_id, orjson.dumps(doc), None)
