"""Each custom_id's home partition, and the records forwarded there.

What tierline knows of an item while it runs (in a batch, at which attempt) and once it has ended is kept
with one partition: its custom_id's *home*, where Kafka's own partitioner puts a record keyed by it
(murmur2: the Java client, aiokafka, ``tierline submit``). A producer that places records otherwise
(librdkafka's default crc32, no key, a key other than the custom_id, a partition of its own choosing) may
put one custom_id on several partitions, read by several workers at once: each would run it. So the
worker that reads a request or a retry away from its home forwards it there first, before anything else
is done with it: the same value, headers and timestamp, keyed by the custom_id, with a header
(``tierline-from``) naming the record it was first read as. The worker that owns the home partition
then reads it as any other, and the attempt is known by that first record (a crash between the forward
and the commit past the original forwards it twice: both copies name the same first record, so an
attempt that has ended is not run again for the second).

For producers that key records by custom_id with Kafka's default partitioner, nothing is forwarded.
"""

from __future__ import annotations

from aiokafka import ConsumerRecord

from streams.kafka.partitioner import partition_of
from streams.kafka.publish import Message

__all__ = ["FROM_HEADER", "home_of", "forward", "first_read"]

FROM_HEADER = "tierline-from"


def home_of(custom_id: str, partitions: int) -> int:
    """The partition, of ``partitions``, whose worker answers for ``custom_id``."""
    return partition_of(custom_id.encode(), partitions)


def forward(record: ConsumerRecord, custom_id: str, home: int) -> Message:
    """``record`` written again at ``home`` of its topic, naming the record it was first read as."""
    headers = tuple(record.headers or ())
    if first_read(record) is None:
        where = f"{record.partition}:{record.offset}:{record.timestamp}".encode()
        headers = (*headers, (FROM_HEADER, where))
    return Message(record.topic, custom_id, record.value, home, headers, record.timestamp)


def first_read(record: ConsumerRecord) -> tuple[int, int, int] | None:
    """The partition, offset and timestamp of the record this one was forwarded from, if it was."""
    for name, value in record.headers or ():
        if name == FROM_HEADER:
            try:
                partition, offset, timestamp = (int(part) for part in value.split(b":"))
            except (ValueError, AttributeError):
                continue  # not tierline's
            return partition, offset, timestamp
    return None
