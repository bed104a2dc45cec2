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
from aiokafka import ConsumerRecord

from streams.publish import Message
from streams.whole_topic import WholeTopic

__all__ = ["Ledger"]

log = structlog.get_logger(__name__)


class Ledger(WholeTopic):
    """Which custom_ids (within their re-run, if any) have succeeded."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        super().__init__(bootstrap_servers, topic)
        self._done: set[str] = set()

    def succeeded(self, run_key: str) -> bool:
        return run_key in self._done

    def record(self, batch_key: str, chunk: int, batch_id: str, run_keys: list[str]) -> Message:
        """Note successes and return the ledger message to publish with their results."""
        self._done.update(run_keys)
        value = orjson.dumps({"batch_id": batch_id, "succeeded": run_keys})
        return (self.topic, f"{batch_key}#{chunk}", value, None)

    def take(self, record: ConsumerRecord) -> None:
        try:
            self._done.update(orjson.loads(record.value)["succeeded"])
        except (orjson.JSONDecodeError, TypeError, KeyError):
            log.warning("ledger_record_unreadable", partition=record.partition, offset=record.offset)

    async def start(self) -> int:
        read = await super().start()
        log.info("ledger_loaded", entries=read)
        return read
