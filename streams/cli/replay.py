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
from aiokafka import AIOKafkaConsumer

from streams.kafka.publish import Message, Publisher
from streams.kafka.topics import require_topics
from streams.settings import Settings
from streams.kafka.whole_topic import partitions_of, read_to_end

__all__ = ["replay", "Replayed"]

CHUNK = 10_000


@dataclass(slots=True)
class Replayed:
    published: int = 0
    not_work_items: int = 0  # messages that were dead-lettered the first time


async def replay(settings: Settings, reprocess: str | None = None, custom_ids: frozenset[str] = frozenset(),
                 since_ms: int | None = None) -> Replayed:
    """Read ``tierline.requests`` from the start (or ``since_ms``) to its current end and publish it again."""
    await require_topics(settings, "requests")
    topic = settings.topics.requests
    consumer = AIOKafkaConsumer(**settings.kafka.options("replay"), group_id=None,
                                enable_auto_commit=False, fetch_max_bytes=32 << 20)
    publisher = Publisher(settings.kafka, "replay")
    await consumer.start()
    await publisher.start()
    counts = Replayed()
    try:
        # Only what is there now: the items published again come after the end read here.
        records = []
        async for record in read_to_end(consumer, topic, await partitions_of(consumer, topic), since_ms):
            records.append(record)
            if len(records) == CHUNK:
                counts.published += await publisher.publish(_again(records, topic, reprocess, custom_ids, counts))
                records = []
        counts.published += await publisher.publish(_again(records, topic, reprocess, custom_ids, counts))
    finally:
        await publisher.stop()
        await consumer.stop()
    return counts


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
            yield Message(topic, custom_id, orjson.dumps(doc))
        else:
            yield Message(topic, custom_id, record.value)  # as it was, byte for byte
