"""The ledger of succeeded custom_ids: a compacted topic every worker reads whole.

Producers' clients partition keys differently (aiokafka hashes with murmur2,
librdkafka with crc32 by default), so the same custom_id published twice may
arrive on two partitions. The ledger is therefore global, like a Faust
GlobalTable: each worker reads all of it at start and then follows it, and so
knows every success, whichever worker recorded it.

One record names many successes: key ``{batch_key}#{chunk}``, value
``{"v": 2, "batch_id": ..., "succeeded": [custom_id, ...], "reprocessed": [[custom_id, name], ...]}``,
published together with the chunk's result events. Records written before ``v`` 2
named a re-run's success ``custom_id~name``, which an ordinary custom_id holding ``~``
could equal: such an entry is read both ways, so that nothing it may mean runs twice.

A record per custom_id cost every worker a Kafka record to write and another to read
back for each result, a fifth of the batch tier's time; settling the same chunk again
writes the same key, so compaction keeps one copy.
"""

from __future__ import annotations

import orjson
import structlog
from aiokafka import ConsumerRecord

from schemas import RunKey
from streams.kafka.connection import KafkaConnection
from streams.kafka.publish import Message
from streams.kafka.whole_topic import WholeTopic

__all__ = ["Ledger"]

log = structlog.get_logger(__name__)


class Ledger(WholeTopic):
    """Which custom_ids (within their re-run, if any) have succeeded."""

    def __init__(self, kafka: KafkaConnection, topic: str) -> None:
        super().__init__(kafka, topic)
        self._done: set[RunKey] = set()

    def succeeded(self, run_key: RunKey) -> bool:
        return run_key in self._done

    def record(self, key: str, chunk: int, batch_id: str, run_keys: list[RunKey]) -> Message:
        """Note successes and return the ledger message (keyed ``{key}#{chunk}``) to publish with their results."""
        self._done.update(run_keys)
        plain = [k for k in run_keys if isinstance(k, str)]
        value = orjson.dumps({"v": 2, "batch_id": batch_id, "succeeded": plain,
                              "reprocessed": [k for k in run_keys if not isinstance(k, str)]})
        return Message(self.topic, f"{key}#{chunk}", value)

    def take(self, record: ConsumerRecord) -> None:
        try:
            doc = orjson.loads(record.value)
            if doc.get("v") == 2:
                self._done.update(doc["succeeded"])
                self._done.update((cid, name) for cid, name in doc["reprocessed"])
            else:
                self._done.update(_both_ways(doc["succeeded"]))
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError):
            log.warning("ledger_record_unreadable", partition=record.partition, offset=record.offset)

    async def start(self) -> int:
        read = await super().start()
        log.info("ledger_loaded", entries=read)
        return read


def _both_ways(entries: list[str]) -> list[RunKey]:
    """An old entry ``a~b`` was the custom_id ``a~b`` or ``a`` re-run as ``b``: it stands for each."""
    keys: list[RunKey] = []
    for entry in entries:
        keys.append(entry)
        at = entry.find("~")
        while at > 0:
            keys.append((entry[:at], entry[at + 1:]))
            at = entry.find("~", at + 1)
    return keys
