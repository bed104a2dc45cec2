"""``tierline submit`` publishes each line as it is, where Kafka's own clients would put its key."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from streams.cli.produce import publish_lines
from streams.kafka.partitioner import partition_of
from streams.kafka.topics import ensure_topics
from streams.kafka.whole_topic import read_to_end, reader
from streams.settings import Settings

pytestmark = pytest.mark.integration


Read = list[tuple[int, bytes | None, bytes]]  # each record's partition, key and value


async def _publish_then_read(settings: Settings, lines: list[bytes]) -> tuple[int, Read]:
    await ensure_topics(settings)
    published = await publish_lines(settings, lines)
    consumer = reader(settings.kafka, "test")
    await consumer.start()
    try:
        read = [(r.partition, r.key, r.value) async for r in
                read_to_end(consumer, settings.topics.requests, set(range(settings.partitions)))]
    finally:
        await consumer.stop()
    return published, read


def test_each_line_lands_whole_in_its_custom_ids_partition_and_keyless_lines_are_spread(broker_port: int) -> None:
    settings = Settings.from_env({"TIERLINE_BROKER": f"kafka://127.0.0.1:{broker_port}",
                                  "TIERLINE_TOPIC_PREFIX": f"submit-{uuid.uuid4().hex[:8]}"})
    keyed = [orjson.dumps({"custom_id": f"line-{n}", "provider": "anthropic", "params": {"n": n}})
             for n in range(3_000)]
    keyless = [b'{"provider": "anthropic"}', b"not json", b'{"custom_id": 7}', b'{"custom_id": ""}']
    published, read = asyncio.run(_publish_then_read(settings, [*keyed, *keyless]))

    assert published == len(keyed) + len(keyless)
    assert sorted(value for _, _, value in read) == sorted([*keyed, *keyless])  # each once, byte for byte
    for partition, key, value in read:
        if value in keyless:
            assert key is None
        else:
            assert key == orjson.loads(value)["custom_id"].encode()
            assert partition == partition_of(key, settings.partitions)
    assert len({partition for partition, key, _ in read if key is None}) > 1
