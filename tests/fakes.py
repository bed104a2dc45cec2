"""In-process stand-ins for Kafka, to drive the agents without a broker or a worker process.

- ``FakeConsumer``: what an agent's intake asks of aiokafka's consumer. Records are put on
  its partitions' logs; ``getmany`` reads from each assigned partition's position;
  ``rebalance`` revokes and assigns through the agent's listener, as the group coordinator
  does, and positions the new assignment at the group's committed offsets, so that what was
  not committed is read again.
- ``FakePublisher``: keeps what would have been published.
- ``MemoryLedger`` / ``MemorySpend``: the real ledger and spend, with nothing to read at start.
- ``runtime(...)``: what the agents share, with these and a real spool, price table, budget
  and batch ownership.
- ``result_file(...)``: outcomes as a provider adapter hands them to settling: lines, and their format.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any, AsyncIterator, Callable, Iterable

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from core.admission import Enqueued
from core.cost import DailyBudget, PriceTable
from core.outcomes import ItemOutcome
from providers.base import ResultFormat
from schemas import BatchRecord, ErrorInfo
from streams.kafka.publish import Message, RecordTooLarge
from streams.ownership import Ownership
from streams.settings import Settings
from streams.state.batch_log import BatchJob, BatchLog, note_items, read_again
from streams.state.ledger import Ledger
from streams.state.budget import SharedBudget
from streams.state.enqueued import EnqueuedTokens
from streams.state.crashes import Position
from streams.state.call_budget import CallBudget
from streams.state.spool import Spool


class FakeConsumer:
    def __init__(self) -> None:
        self.logs: dict[TopicPartition, list[ConsumerRecord]] = defaultdict(list)
        self.group: dict[TopicPartition, int] = {}  # the committed offsets
        self.commits: list[dict[TopicPartition, int]] = []
        self.paused: set[TopicPartition] = set()
        self.listener: Any = None
        self.topics: list[str] = []
        self.stopped = False
        self._assignment: set[TopicPartition] = set()
        self._position: dict[TopicPartition, int] = {}
        #: Raised by every commit while set: the group has moved on (CommitFailedError), or no broker answers.
        self.refuse_commits: Exception | None = None

    # -- the test's side ---------------------------------------------------------------

    def put(self, tp: TopicPartition, value: bytes | None, key: bytes | None = b"k",
            timestamp_ms: int | None = None, headers: tuple[tuple[str, bytes], ...] = ()) -> ConsumerRecord:
        log = self.logs[tp]
        record = ConsumerRecord(topic=tp.topic, partition=tp.partition, offset=len(log),
                                timestamp=int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
                                timestamp_type=0, key=key, value=value, checksum=None,
                                serialized_key_size=len(key or b""), serialized_value_size=len(value or b""),
                                headers=headers)
        log.append(record)
        return record

    def put_json(self, tp: TopicPartition, docs: Iterable[dict[str, Any]]) -> None:
        for doc in docs:
            self.put(tp, orjson.dumps(doc), key=str(doc.get("custom_id", "")).encode())

    async def rebalance(self, assigned: Iterable[TopicPartition]) -> None:
        """Take the current partitions away (if any), then assign these, through the agent's listener."""
        if self._assignment:
            await self.listener.on_partitions_revoked(set(self._assignment))
        self._assignment = set(assigned)
        self.paused.clear()
        self._position = {tp: self.group.get(tp, 0) for tp in self._assignment}
        await self.listener.on_partitions_assigned(set(self._assignment))

    def unread(self) -> bool:
        """Whether an assigned partition that is not paused holds records past its position."""
        return any(self._position[tp] < len(self.logs[tp]) for tp in self._assignment - self.paused)

    def committed_now(self, tp: TopicPartition) -> int:
        return self.group.get(tp, 0)

    # -- what aiokafka's consumer offers -------------------------------------------------

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.topics, self.listener = topics, listener

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    async def getmany(self, timeout_ms: int = 0,
                      max_records: int | None = None) -> dict[TopicPartition, list[ConsumerRecord]]:
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        room = max_records or 1 << 30
        beyond = {tp: at for tp, at in self._position.items() if at > len(self.logs[tp])}
        if beyond:  # as aiokafka does with auto_offset_reset="none"
            raise OffsetOutOfRangeError(beyond)
        for tp in sorted(self._assignment):
            if tp in self.paused or room <= 0:
                continue
            start = self._position[tp]
            records = self.logs[tp][start:start + room]
            if records:
                out[tp] = records
                self._position[tp] = start + len(records)
                room -= len(records)
        await asyncio.sleep(0)
        return out

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.refuse_commits is not None:
            raise self.refuse_commits
        self.commits.append(dict(offsets))
        self.group.update(offsets)

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.group.get(tp)

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp]) for tp in tps}

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._position[tp] = 0

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._position[tp] = offset

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.logs[tp])

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)


class FakePublisher:
    """Keeps what is published; refuses a record past ``max_record_bytes``, as the real one does."""

    def __init__(self, max_record_bytes: int = 1_000_000) -> None:
        self.sent: list[Message] = []
        self.max_record_bytes = max_record_bytes
        self._deliver: dict[str, FakeConsumer] = {}

    def deliver(self, consumer: FakeConsumer, *topics: str) -> None:
        """What is published to these topics goes onto ``consumer``'s partitions too, as a broker would put it."""
        self._deliver.update(dict.fromkeys(topics, consumer))

    async def publish(self, messages: Iterable[Message]) -> int:
        batch = [Message(*m) for m in messages]
        for m in batch:
            value = m.value if m.value is None or isinstance(m.value, bytes) else orjson.dumps(m.value)
            if len((m.key or "").encode()) + len(value or b"") > self.max_record_bytes:
                raise RecordTooLarge(f"{m.topic}: {len(value or b'')} bytes")
        self.sent.extend(batch)
        for m in batch:
            if (consumer := self._deliver.get(m.topic)) is not None:
                assert m.partition is not None and (m.value is None or isinstance(m.value, bytes))
                consumer.put(TopicPartition(m.topic, m.partition), m.value, None if m.key is None else m.key.encode(),
                             m.timestamp_ms, m.headers)
        return len(batch)

    def on(self, topic: str) -> list[Any]:
        """The values published on ``topic``, as JSON documents (records serialised as orjson would)."""
        return [orjson.loads(m.value if isinstance(m.value, bytes) else orjson.dumps(m.value))
                for m in self.sent if m.topic == topic and m.value is not None]


class InMemory:
    """For a ``WholeTopic`` follower: nothing to read at start or later; what it holds is the test's."""

    async def start(self) -> int:
        self.loaded = True
        return 0

    async def catch_up(self, timeout_s: float = 0.0) -> int:
        return 0

    async def catch_up_to_end(self, timeout_s: float = 30.0) -> int:
        return 0

    async def stop(self) -> None:
        pass


class MemoryLedger(InMemory, Ledger):
    pass


class MemoryBudget(InMemory, SharedBudget):
    """The shared budget with no one else asking: a reserve is folded and decided at once."""

    async def reserve(self, batch_key: str, day: int, usd: float) -> bool:
        offset = self.log.folded + 1
        self.log.apply(offset, {"kind": "reserve", "batch_key": batch_key, "day": day, "usd": usd})
        return bool(self.log.decision(batch_key, offset))


class MemoryEnqueued(InMemory, EnqueuedTokens):
    pass


class MemoryBatchLog(BatchLog):
    """The real batch log writing to a ``FakePublisher``; the unfinished batches to resume are the test's."""

    def __init__(self, settings: Settings, publisher: FakePublisher, spool: Spool) -> None:
        super().__init__(settings, publisher, spool)  # type: ignore[arg-type]
        self.to_resume: list[BatchJob] = []
        self.asked: list[set[int]] = []  # the home partitions asked for, at each assignment

    async def unfinished(self, partitions: set[int], generation: int) -> list[BatchJob]:
        self.asked.append(set(partitions))
        jobs = [BatchJob(job.record, job.spooled, generation) for job in self.to_resume
                if job.record.home in partitions]
        self.to_resume = [job for job in self.to_resume if job.record.home not in partitions]
        return jobs

    async def held_from(self, committed: dict[tuple[str, int], int], homes: set[int]) -> dict[str, int]:
        """As the real one decides, from what was published here (every writer trusted)."""
        latest = {record.batch_key: record for record in self.records() if record.home not in homes}
        held = read_again(latest, committed)
        items: dict[str, int] = {}
        for message in self._publisher.sent:  # type: ignore[attr-defined]
            if message.topic == self.items_topic and message.value is not None and \
                    message.key.rpartition("#")[0] in held:
                note_items(items, orjson.loads(message.value))
        return items

    def records(self) -> list[BatchRecord]:
        docs = self._publisher.on(self.records_topic)  # type: ignore[attr-defined]
        return [BatchRecord(**doc) for doc in docs if "batch_key" in doc]  # not the owners' marks

    async def claimed_ids(self) -> set[str]:
        return {record.batch_id for record in self.records() if record.batch_id}

    async def latest(self, partitions: set[int], match: Callable[[BatchRecord], bool]) -> BatchRecord | None:
        found = [record for record in self.records() if record.home in partitions and match(record)]
        return found[-1] if found else None


class NoCrashes:
    """No message has crashed a worker (or those ``at`` says have, three times)."""

    def __init__(self, at: Callable[[Position], bool] | None = None) -> None:
        self._at = at

    def set_aside(self, tp: TopicPartition, offset: int) -> bool:
        return self._at is not None and self._at(Position(tp.topic, tp.partition, offset))

    async def guard(self, loop: Any, publisher: Any, at: Any, agent: str) -> None:
        await loop


def runtime(settings: Settings, folder: Path, clock: Callable[[], float] = time.time,
            set_aside: Callable[[Position], bool] | None = None) -> SimpleNamespace:
    """What the agents share in one worker, in memory: reads nothing from Kafka, publishes to a list."""
    publisher = FakePublisher(settings.kafka_max_record_bytes)
    spool = Spool(folder / "spool")
    budget = DailyBudget(settings.daily_budget_usd, clock)
    settled: list[list[str]] = []
    shared = SimpleNamespace(
        settings=settings, publisher=publisher, spool=spool, budget=budget,
        prices=PriceTable.load(settings.prices_path, settings.catalogue.pricing()),
        ledger=MemoryLedger(settings.kafka, settings.topics.ledger),
        spend=MemoryBudget(settings.kafka, settings.topics.budget, budget, publisher),  # type: ignore[arg-type]
        batch_log=MemoryBatchLog(settings, publisher, spool),
        crashes=NoCrashes(set_aside), ownership=Ownership(), settled=settled, clock=clock,
        enqueued=MemoryEnqueued(settings.kafka, settings.topics.batches, Enqueued(settings.token_limits)),
    )
    shared.items_settled = settled.append
    shared.calls = CallBudget(shared.spend, budget, publisher, settings.budget_lease_usd)  # type: ignore[arg-type]
    return shared


def result_line(outcome: ItemOutcome) -> bytes:
    """An outcome as a line of a stand-in provider's result file, in ``RESULT_FORMAT``."""
    return orjson.dumps(outcome)


def _read_result(doc: dict[str, Any]) -> ItemOutcome:
    error = ErrorInfo(**doc["error"]) if doc["error"] else None
    return ItemOutcome(doc["custom_id"], doc["response"], doc["usage"], error, doc["retryable"])


RESULT_FORMAT = ResultFormat("custom_id", _read_result)


def result_file(*outcomes: ItemOutcome) -> tuple[AsyncIterator[list[bytes]], ResultFormat]:
    """A result file of these outcomes, as an adapter's ``result_lines`` streams it (a run of three lines at a
    time), and its ``result_format``."""
    async def lines() -> AsyncIterator[list[bytes]]:
        for start in range(0, len(outcomes), 3):
            yield [result_line(outcome) for outcome in outcomes[start:start + 3]]

    return lines(), RESULT_FORMAT
