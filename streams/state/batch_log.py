"""The durable life of every batch, in Kafka, so that any worker can finish what another began.

Before a provider is asked to create a batch, its items go to the compacted
``tierline.batch-items`` topic (chunks keyed ``{batch_key}#{n}``) and then its
``intent`` record to ``tierline.batches`` (keyed by ``batch_key``), both on the
batch's *home* partition. The provider's batch id follows as ``submitted``, and
``ended`` or ``rejected`` closes the record, when the items' chunks are
deleted (tombstones). Whoever is assigned partition ``home`` of the request
topic owns the batch: after a crash or a rebalance it reads both topics'
partition and resumes every batch left at ``intent`` or ``submitted``.

**Fenced writes.** Before it reads a home partition, a worker taking it over writes an *owner's
mark* there (``take``: a token of its own, keyed ``~owner#{home}#{token}``), and every record it
writes afterwards carries that token. A former owner cut off from the group may still have writes
on their way, which land after the new owner's mark: the log's order tells them apart. A reader
trusts a record only if it carries the token of the last mark before it in its partition (or none,
as the operator's commands write). An intent written too late is closed ``superseded`` without a
create: its items were read again by the new owner. A batch a former owner did create too late (a
``submitted`` record after the mark) is adopted, not created again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import orjson
import structlog
from aiokafka import AIOKafkaConsumer

from core.cost import BYTES_PER_TOKEN
from core.limits import BatchGroup
from providers.base import SpooledBatch
from schemas import BatchRecord
from streams.kafka.publish import Message, Publisher
from streams.settings import Settings
from streams.state.spool import Spool
from streams.kafka.whole_topic import partitions_of, read_to_end, reader

__all__ = ["BatchLog", "BatchJob", "UNFINISHED", "record_of", "read_again", "note_items"]

log = structlog.get_logger(__name__)

CHUNK_ITEMS = 2_000
CHUNK_FRAMING = 1_024  # a chunk's JSON around its items, and its key
UNFINISHED = frozenset({"intent", "submitted"})


def record_of(doc: dict[str, Any]) -> BatchRecord | None:
    """A value of ``tierline.batches``: a batch's record, or None for an owner's mark."""
    return BatchRecord(**doc) if "batch_key" in doc else None


@dataclass(frozen=True, slots=True)
class BatchJob:
    """A batch for the submitter or the poller: its latest record and its spooled items.

    ``generation`` is the worker's generation when the job was made: a job of an
    older one was handed back in a rebalance and is not this worker's to do.
    ``resumed`` says it was read back from Kafka rather than made by this worker.
    ``not_before`` (Unix seconds) holds it back from the submitter until then.
    """

    record: BatchRecord
    spooled: SpooledBatch
    generation: int
    resumed: bool = False
    not_before: float = 0.0


class BatchLog:
    """Writes and reads ``tierline.batches`` and ``tierline.batch-items``."""

    def __init__(self, settings: Settings, publisher: Publisher, spool: Spool | None = None) -> None:
        self._kafka = settings.kafka
        self._chunk_bytes = settings.kafka.max_record_bytes - CHUNK_FRAMING
        self._publisher = publisher
        self._spool = spool
        self.records_topic = settings.topics.batches
        self.items_topic = settings.topics.batch_items
        #: With a daily budget, what each batch did cost goes to the budget every worker folds.
        self.budget_topic = settings.topics.budget if settings.daily_budget_usd else None
        #: The token of this worker's last ``take``, carried by every record it writes (None: the commands).
        self.owner: str | None = None

    async def take(self, homes: set[int]) -> None:
        """Mark these home partitions as this worker's from now on: a record written after the mark under
        any other owner's token is not trusted (``unfinished``). Done before they are read."""
        if not homes:
            return
        token, now = secrets.token_hex(8), time.time()
        await self._publisher.publish([Message(self.records_topic, f"~owner#{home}#{token}",
                                               {"owner": token, "home": home, "at": now}, home)
                                       for home in sorted(homes)])
        self.owner = token

    async def intent(self, spooled: SpooledBatch, home: int, estimated_usd: float = 0.0,
                     budget_day: int = 0, replaces: str | None = None, requeues: int = 0,
                     deadline: float | None = None, sources: list[tuple[str, int, int]] | None = None) -> BatchRecord:
        """Make the batch durable before anyone calls the provider: items first, then the record."""
        chunks = 0

        def messages() -> Iterator[Message]:
            nonlocal chunks
            for chunks, (contexts, lines) in enumerate(_read_chunks(spooled, self._chunk_bytes), start=1):
                value = orjson.dumps({"contexts": contexts, "lines": lines})
                yield Message(self.items_topic, f"{spooled.key}#{chunks - 1}", value, home)

        await self._publisher.publish(messages())
        if replaces is not None and self.budget_topic is not None:  # its share of the reservation comes along
            await self._publisher.publish([Message(self.budget_topic, spooled.key, {
                "kind": "move", "batch_key": spooled.key, "from": replaces, "usd": estimated_usd}, 0)])
        now = time.time()
        group = spooled.group
        record = BatchRecord(batch_key=spooled.key, provider=group.provider, state="intent", item_count=spooled.count,
                             endpoint=group.endpoint, model=group.model, at=now, home=home, chunks=chunks,
                             created_at=now, estimated_usd=estimated_usd, budget_day=budget_day, replaces=replaces,
                             requeues=requeues, estimated_tokens=spooled.size_bytes // BYTES_PER_TOKEN,
                             deadline=deadline, sources=sources)
        await self.record(record)
        return record

    async def record(self, record: BatchRecord) -> None:
        if record.owner != self.owner:
            record = dataclasses.replace(record, owner=self.owner)
        await self._publisher.publish([Message(self.records_topic, record.batch_key, record, record.home)])

    async def close(self, record: BatchRecord) -> None:
        """The batch ended or was rejected: record it (and its cost against the budget), then delete its items."""
        await self.record(record)
        settle = [] if self.budget_topic is None else [Message(self.budget_topic, record.batch_key, {
            "kind": "settle", "batch_key": record.batch_key,
            "usd": record.cost_usd if record.state == "ended" else 0.0}, 0)]
        await self._publisher.publish([
            *settle, *(Message(self.items_topic, f"{record.batch_key}#{n}", None, record.home)
                       for n in range(record.chunks))])

    async def latest(self, partitions: set[int], match: Callable[[BatchRecord], bool]) -> BatchRecord | None:
        """The newest record, in these partitions, of the batch ``match`` picks out."""
        found = None
        consumer = reader(self._kafka, "batch-log")
        await consumer.start()
        try:
            async for message in read_to_end(consumer, self.records_topic, partitions):
                if message.value is not None and (record := record_of(orjson.loads(message.value))) is not None:
                    if (found is not None and record.batch_key == found.batch_key) or match(record):
                        found = record
        finally:
            await consumer.stop()
        return found

    async def claimed_ids(self) -> set[str]:
        """Every provider batch id some batch record names, in every partition: not an orphan."""
        claimed = set()
        consumer = reader(self._kafka, "batch-log")
        await consumer.start()
        try:
            partitions = await partitions_of(consumer, self.records_topic)
            async for message in read_to_end(consumer, self.records_topic, partitions):
                if message.value is not None and (batch_id := orjson.loads(message.value).get("batch_id")):
                    claimed.add(batch_id)
        finally:
            await consumer.stop()
        return claimed

    async def _settle_late(self, late: dict[str, BatchRecord], latest: dict[str, BatchRecord]) -> None:
        """A former owner's writes that landed after this worker's mark: an intent nobody else recorded is
        closed ``superseded`` (its items were read again); a batch it created meanwhile is adopted."""
        for key, record in late.items():
            trusted = latest.get(key)
            log.warning("batch_record_too_late", batch_key=key, state=record.state, batch_id=record.batch_id,
                        written_by=record.owner, trusted_state=trusted.state if trusted else None)
            if trusted is None and record.state == "intent":
                await self.close(dataclasses.replace(record, state="superseded", at=time.time()))
            elif trusted is not None and trusted.state == "intent" and record.batch_id is not None:
                latest[key] = dataclasses.replace(trusted, state="submitted", batch_id=record.batch_id, at=time.time())
                await self.record(latest[key])

    async def _fold(self, consumer: AIOKafkaConsumer, partitions: set[int]) -> tuple[dict[str, BatchRecord],
                                                                                   dict[str, BatchRecord]]:
        """The latest trusted record of each batch homed in ``partitions``, and those written by a former owner
        after another took the partition over (``take``)."""
        latest: dict[str, BatchRecord] = {}
        late: dict[str, BatchRecord] = {}
        owners: dict[int, str] = {}  # per partition, the token of the last owner's mark so far
        async for message in read_to_end(consumer, self.records_topic, partitions):
            if message.value is None:
                latest.pop(message.key.decode(), None)
                continue
            doc = orjson.loads(message.value)
            if (record := record_of(doc)) is None:
                owners[message.partition] = doc["owner"]
            elif record.owner is not None and owners.get(message.partition, record.owner) != record.owner:
                late[record.batch_key] = record
            else:
                latest[record.batch_key] = record
        return latest, late

    async def held_from(self, committed: dict[tuple[str, int], int], homes: set[int]) -> dict[str, int]:
        """The items (custom_id → attempt) of unfinished batches homed outside ``homes`` that were read from a
        partition of ``committed`` at or past the group's commit there: reading it, the group gives them again.

        A batch is homed in a partition of the worker that closed it, which may not be the partition its items
        came from; the offsets past its items are committed once it is durable. A commit that did not land
        before the items' partition changed hands (a broker slow to answer, a rebalance) leaves them to be read
        again by their new owner, which must not place them in a second batch. Records of a former owner written
        too late (``take``: their items are read again by design) are left out. Reads the records of every
        partition but ``homes`` (whose batches the caller resumes), then the items of the batches found, if any."""
        if not committed:
            return {}
        consumer = reader(self._kafka, "batch-log", fetch_max_bytes=32 << 20, max_partition_fetch_bytes=16 << 20)
        await consumer.start()
        items: dict[str, int] = {}
        try:
            if not (others := await partitions_of(consumer, self.records_topic) - homes):
                return items
            latest, _ = await self._fold(consumer, others)
            if not (held := read_again(latest, committed)):
                return items
            async for message in read_to_end(consumer, self.items_topic, {r.home for r in held.values()}):
                if message.value is not None and message.key.decode().rpartition("#")[0] in held:
                    note_items(items, orjson.loads(message.value))
        finally:
            await asyncio.sleep(0)  # aiokafka's consumer stopped before its first step raises CancelledError
            await consumer.stop()
        log.warning("items_held_elsewhere", batches=sorted(held), items=len(items),
                    doing="not placed again: the group's commit did not pass them before their partition moved")
        return items

    async def unfinished(self, partitions: set[int], generation: int) -> list[BatchJob]:
        """Every batch homed in ``partitions`` that is not yet ended, with its items spooled again."""
        if not partitions:
            return []
        assert self._spool is not None, "resuming batches needs the worker's spool"
        consumer = reader(self._kafka, "batch-log", fetch_max_bytes=32 << 20, max_partition_fetch_bytes=16 << 20)
        await consumer.start()
        try:
            latest, late = await self._fold(consumer, partitions)
            await self._settle_late(late, latest)
            open_records = _open(latest)
            written: dict[str, set[int]] = {key: set() for key in open_records}
            async for record in read_to_end(consumer, self.items_topic, partitions):
                key, _, n = record.key.decode().rpartition("#")
                if key not in open_records or record.value is None or int(n) in written[key]:
                    continue
                written[key].add(int(n))
                chunk = orjson.loads(record.value)
                for context, line in zip(chunk["contexts"], chunk["lines"], strict=True):
                    self._spool.append(key, orjson.dumps(line), orjson.dumps(context))
        finally:
            await consumer.stop()
        resumed = []
        for key, record in open_records.items():
            if len(written[key]) != record.chunks:
                log.error("batch_items_missing", batch_key=key, chunks=record.chunks, found=len(written[key]))
                self._spool.remove(key)
                continue
            group = BatchGroup(record.provider, record.endpoint, record.model)
            spooled = self._spool.finish(key, group, record.item_count, 0)
            resumed.append(BatchJob(record, spooled, generation, resumed=True))
        return resumed


def read_again(latest: dict[str, BatchRecord], committed: dict[tuple[str, int], int]) -> dict[str, BatchRecord]:
    """The unfinished batches of ``latest`` holding items read from a partition of ``committed`` at or past the
    group's commit there."""
    return {key: record for key, record in _open(latest).items() if any(
        (topic, partition) in committed and last >= committed[topic, partition]
        for topic, partition, last in record.sources or ())}


def note_items(items: dict[str, int], chunk: dict[str, Any]) -> None:
    """Each item of a ``tierline.batch-items`` chunk into ``items``: custom_id → its latest attempt."""
    for context in chunk["contexts"]:
        items[context["custom_id"]] = max(items.get(context["custom_id"], 0), context["attempt"])


def _open(latest: dict[str, BatchRecord]) -> dict[str, BatchRecord]:
    """The batches not yet ended; a batch replaced by others (refused for some items, the rest resubmitted) is
    theirs now."""
    replaced = {r.replaces for r in latest.values() if r.replaces}
    return {key: r for key, r in latest.items() if r.state in UNFINISHED and key not in replaced}


def _read_chunks(spooled: SpooledBatch, max_bytes: int) -> Iterator[tuple[list[orjson.Fragment],
                                                                        list[orjson.Fragment]]]:
    """The spooled contexts and lines, a chunk at a time (at most ``CHUNK_ITEMS`` items and about
    ``max_bytes`` of them), embedded as they are (no re-parsing). An item alone past ``max_bytes``
    cannot be: the windowing agent dead-letters requests that large."""
    with spooled.items_path.open("rb") as contexts, spooled.input_path.open("rb") as lines:
        chunk_contexts: list[orjson.Fragment] = []
        chunk_lines: list[orjson.Fragment] = []
        size = 0
        for context, line in zip(contexts, lines, strict=True):
            if chunk_contexts and (len(chunk_contexts) == CHUNK_ITEMS or size + len(context) + len(line) > max_bytes):
                yield chunk_contexts, chunk_lines
                chunk_contexts, chunk_lines, size = [], [], 0
            chunk_contexts.append(orjson.Fragment(context.rstrip(b"\n")))
            chunk_lines.append(orjson.Fragment(line.rstrip(b"\n")))
            size += len(context) + len(line) + 2  # and a comma each
        if chunk_contexts:
            yield chunk_contexts, chunk_lines

