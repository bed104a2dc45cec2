"""The ledger of succeeded custom_ids: a compacted topic every worker reads whole.

Producers' clients partition keys differently (aiokafka hashes with murmur2,
librdkafka with crc32 by default), so the same custom_id published twice may
arrive on two partitions. The ledger is therefore global, like a Faust
GlobalTable: each worker reads all of it at start and then follows it, and so
knows every success, whichever worker recorded it.

One record names many successes: key ``{batch_key}#{chunk}``, value
``{"batch_id": ..., "succeeded": [custom_id, ...]}``, published together with
the chunk's result events. A record per custom_id cost every worker a Kafka
record to write and another to read back for each result, a fifth of the
batch tier's time; settling the same chunk again writes the same key, so
compaction keeps one copy.
"""

from __future__ import annotations

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.publish import Message

__all__ = ["Ledger"]

log = structlog.get_logger(__name__)


class Ledger:
    """Which custom_ids have succeeded."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._bootstrap = bootstrap_servers
        self.topic = topic
        self._done: set[str] = set()
        self._consumer: AIOKafkaConsumer | None = None

    def succeeded(self, custom_id: str) -> bool:
        return custom_id in self._done

    def record(self, batch_key: str, chunk: int, batch_id: str, custom_ids: list[str]) -> Message:
        """Note successes and return the ledger message to publish with their results."""
        self._done.update(custom_ids)
        value = orjson.dumps({"batch_id": batch_id, "succeeded": custom_ids})
        return (self.topic, f"{batch_key}#{chunk}", value, None)

    async def start(self) -> int:
        """Read the whole ledger; return how many entries were read."""
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None,
            fetch_max_bytes=16 << 20, max_partition_fetch_bytes=8 << 20,
        )
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self.topic) or set()
        if not partitions:
            await self._consumer.topics()  # fetch metadata once
            partitions = self._consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        ends = await self._consumer.end_offsets(tps)
        read = 0
        while [tp for tp in tps if await self._consumer.position(tp) < ends[tp]]:
            read += await self.catch_up(timeout_s=1.0)
        log.info("ledger_loaded", entries=read, partitions=len(tps))
        return read

    async def catch_up(self, timeout_s: float = 0.0) -> int:
        """Take in what other workers recorded since the last call."""
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=50_000)
        read = 0
        for records in batch.values():
            for record in records:
                try:
                    self._done.update(orjson.loads(record.value)["succeeded"])
                except (orjson.JSONDecodeError, TypeError, KeyError):
                    log.warning("ledger_record_unreadable", partition=record.partition, offset=record.offset)
                read += 1
        return read

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
