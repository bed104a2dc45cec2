"""The ledger of succeeded custom_ids: a compacted topic, co-partitioned with requests.

A success is written to the partition its request arrived on, so the worker that
owns requests partition *p* learns every success it must skip by reading ledger
partition *p* when the partition is assigned to it, the way a Faust table
recovers from its changelog. Writes go in bulk with the result events.
"""

from __future__ import annotations

from collections import defaultdict

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.publish import Message

__all__ = ["Ledger"]

log = structlog.get_logger(__name__)


class Ledger:
    """Which custom_ids have succeeded, per requests partition."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._bootstrap = bootstrap_servers
        self.topic = topic
        self._done: dict[int, set[str]] = defaultdict(set)

    def succeeded(self, partition: int, custom_id: str) -> bool:
        return custom_id in self._done[partition]

    def entry(self, partition: int, custom_id: str, batch_id: str, attempt: int) -> Message:
        """Note a success and return the ledger message to publish with its result."""
        self._done[partition].add(custom_id)
        value = orjson.dumps({"state": "succeeded", "batch_id": batch_id, "attempt": attempt})
        return (self.topic, custom_id, value, partition)

    def forget(self, partitions: list[int]) -> None:
        for partition in partitions:
            self._done.pop(partition, None)

    async def load(self, partitions: list[int]) -> int:
        """Read the given ledger partitions from the start; return how many entries were read."""
        if not partitions:
            return 0
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None,
            fetch_max_bytes=16 << 20, max_partition_fetch_bytes=8 << 20,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            remaining = {tp for tp in tps if ends[tp] > 0}
            read = 0
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=50_000)
                for tp, records in batch.items():
                    done = self._done[tp.partition]
                    for record in records:
                        if record.key is not None and record.value is not None:
                            done.add(record.key.decode())
                        read += 1
                    if records and records[-1].offset + 1 >= ends[tp]:
                        remaining.discard(tp)
            log.info("ledger_loaded", partitions=partitions, entries=read)
            return read
        finally:
            await consumer.stop()
