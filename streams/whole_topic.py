"""Read a whole topic, every partition, then follow it: for state that every worker needs all of."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

__all__ = ["WholeTopic"]


class WholeTopic:
    """Subclasses say what a record means (``take``); this reads them all, then what comes after."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._bootstrap = bootstrap_servers
        self.topic = topic
        self._consumer: AIOKafkaConsumer | None = None

    def take(self, record: ConsumerRecord) -> None:
        raise NotImplementedError

    async def start(self) -> int:
        """Read the topic from the beginning to its current end; return how many records."""
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

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
