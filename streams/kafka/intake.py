"""A consumer agent's input: read in bulk, one message at a time inside the error boundary, committed
only past what is done, at a steady pace, and handed over whole on a rebalance.

Both consumer agents (``agents.window_items``, ``agents.async_queue``) read through an ``Intake``;
what differs between them is what they do with a message, what they publish for it, and what
they hold when their partitions are taken away (the ``Agent`` protocol).

- **The per-item boundary.** ``each`` hands every message to the agent inside ``try``: what
  raises there is that message's dead letter (``unprocessable``) and the next one is read. A
  message at which workers died too often (``streams.state.crashes``) is dead-lettered
  ``crashed_worker`` without being handled. ``at`` is the message being handled, for a crash
  past the boundary.
- **Commit pacing.** An offset is committed once every message up to it is done (``offsets``:
  the agent holds what is not yet done and releases it later) and what the agent made of them
  is published (``Agent.flush``, called first by every ``commit``); at most once per
  ``commit_interval_s`` unless asked for sooner (``commit_soon``), and only where it moved.
- **Rebalances.** When partitions are taken away the agent first finishes or drops what it
  holds of them (``Agent.hand_back``); then what is done is committed, so that the next owner
  does not read it again, and the rest is forgotten. When partitions are assigned the agent
  takes them over (``Agent.take_over``) before anything read from them reaches it; records that
  wait for that across yet another rebalance are dropped (the next assignment starts again from
  the last commit). A takeover that fails (the broker unreachable just then) is tried again until it
  succeeds: a takeover does nothing twice. The group's heartbeats go on meanwhile.
- **Fencing** (``streams.kafka.fence``). Every commit the broker accepts confirms that the
  partitions are still this member's; while nothing moves, the same offsets are committed again
  to ask. A commit refused because the group has moved on (``CommitFailedError``) is a
  rebalance, not a crash: the partitions are given up at once, without a commit, and aiokafka
  joins the group again. So are partitions unconfirmed for longer than the session timeout
  (cut off from the broker, or frozen): given up without waiting to hear it from the group. If
  the broker then confirms them after all (it had not put the member out), they are taken
  over again from the last commit. Nothing is committed without a fresh confirmation.
- **Positions the partition does not hold.** A broker back with less than it had (memory storage,
  a lost disk) leaves a position past the partition's end; retention can leave one before its
  start. Such a partition is read again from the group's last commit if the partition still holds
  it, else from its first record: never skipped to its end. A group's first read of a partition
  starts at its first record.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import (CommitFailedError, IllegalStateError, KafkaError, NoOffsetForPartitionError,
                             OffsetOutOfRangeError)

from core.offsets import PendingOffsets
from streams.crashpoints import CRASH_MARKER, crash_on_message
from streams.dead_letters import dead_letter
from streams.kafka.fence import UNFENCED, Fence
from streams.kafka.publish import Message
from streams.settings import Settings
from streams.state.crashes import SET_ASIDE, Position, unprocessable

__all__ = ["Intake", "Agent", "group_consumer", "Records"]

log = structlog.get_logger(__name__)

COMMIT_INTERVAL_S = 1.0
TAKE_OVER_RETRY_S = 0.5  # the first wait after a takeover that failed (the broker unreachable), doubling to 30 s

Records = dict[TopicPartition, list[ConsumerRecord]]


class Agent(Protocol):
    """What the intake asks of the agent reading through it."""

    async def flush(self) -> None:
        """Publish what the messages handled so far made (their dead letters too: ``take_letters``)."""

    async def hand_back(self, revoked: set[TopicPartition]) -> None:
        """Finish or drop what is in hand from these partitions; what is done is committed next."""

    async def take_over(self, assigned: set[TopicPartition]) -> None:
        """Get ready for these partitions; nothing is read from them before this returns."""


class SetAside(Protocol):
    def set_aside(self, tp: TopicPartition, offset: int) -> bool: ...


def group_consumer(settings: Settings, group: str, **options: Any) -> AIOKafkaConsumer:
    """A member of the consumer group ``{app_id}-{group}`` that commits by hand. Where it has no position, or one
    the partition does not hold, aiokafka says so (``Intake.read`` decides where to read from)."""
    return AIOKafkaConsumer(
        **settings.kafka.options(group),
        group_id=f"{settings.app_id}-{group}",
        enable_auto_commit=False,
        auto_offset_reset="none",
        rebalance_timeout_ms=int(settings.rebalance_timeout_s * 1000),
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        group_instance_id=f"{settings.instance_id}-{group}" if settings.instance_id else None,
        **options,
    )


class Intake:
    """One agent's consumer: ``start``, then ``read`` and ``each`` in a loop, ``commit`` after each round."""

    def __init__(self, consumer: AIOKafkaConsumer, topics: list[str], agent: Agent, crashes: SetAside,
                 deadletter_topic: str, *, commit_interval_s: float = COMMIT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic, max_record_bytes: int = 1_000_000,
                 fence: Fence = UNFENCED) -> None:
        self.consumer = consumer
        self.offsets = PendingOffsets()
        #: When the broker last confirmed the partitions: nothing that cannot be undone is done without it.
        self.fence = fence
        #: The dead letters of the messages handled so far, for the agent to publish (``take_letters``).
        self.letters: list[Message] = []
        self._at: tuple[TopicPartition, int] | None = None  # the message being handled, if any
        self._topics = topics
        self._agent = agent
        self._crashes = crashes
        self._deadletter = deadletter_topic
        self._max_record_bytes = max_record_bytes
        self._interval = commit_interval_s
        self._clock = clock
        self._generation = 0
        self._assigned = asyncio.Event()
        self._committed: dict[TopicPartition, int] = {}  # the group's offsets, as last committed or read
        self._last_commit = float("-inf")
        self._soon = False
        self._paused = False
        self._lost: set[TopicPartition] = set()  # given up without the group's word: taken back if it confirms
        self._confirming: asyncio.Task[None] | None = None  # the fence's watch
        self._asking: asyncio.Task[None] | None = None  # a confirmation asked for, not yet answered

    @property
    def at(self) -> Position | None:
        """The message being handled, if any: where a crash past the boundary is counted."""
        if self._at is None:
            return None
        tp, offset = self._at
        return Position(tp.topic, tp.partition, offset)

    @property
    def ready(self) -> bool:
        """Partitions assigned (maybe none) and taken over; false while a rebalance is under way."""
        return self._assigned.is_set()

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.subscribe(self._topics, listener=_Listener(self))
        if self.fence is not UNFENCED:
            self._confirming = asyncio.create_task(self._keep_confirmed())

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Commit what is done and leave the group; cut off from the broker, give up on both after
        ``timeout_s`` each: what is not committed is read again by the next owner."""
        for task in (self._confirming, self._asking):
            if task is not None:
                task.cancel()
        try:
            await asyncio.wait_for(self.commit(force=True), timeout_s)
        except asyncio.TimeoutError:
            log.warning("final_commit_timed_out", timeout_s=timeout_s, doing="left for the next owner to read again")
        try:
            await asyncio.wait_for(self.consumer.stop(), timeout_s)
        except asyncio.TimeoutError:
            log.warning("leaving_group_timed_out", timeout_s=timeout_s)

    # -- reading ---------------------------------------------------------------------

    async def read(self, timeout_s: float, max_records: int) -> Records:
        """The next records, once the partitions they come from are taken over; none if partitions
        changed hands again meanwhile."""
        try:
            records: Records = await self.consumer.getmany(timeout_ms=int(timeout_s * 1000),
                                                           max_records=max_records)
        except OffsetOutOfRangeError as exc:  # aiokafka names each partition with the position it asked for
            await self._out_of_range(exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {})
            return {}
        except NoOffsetForPartitionError as exc:  # the group has committed nothing there yet
            assigned = self.consumer.assignment()
            await self.consumer.seek_to_beginning(*(tp for tp in exc.args if tp in assigned))
            return {}
        # aiokafka drops what it fetched for partitions being revoked, but it fetches for newly assigned
        # ones while the agent still takes them over: those records wait for that. If another rebalance
        # begins meanwhile they are dropped: the partitions' next assignment starts from the last commit.
        generation = self._generation
        await self._assigned.wait()
        return records if generation == self._generation else {}

    async def _out_of_range(self, positions: dict[TopicPartition, int]) -> None:
        """Each position the partition does not hold: read again from the last commit, or from the start."""
        for tp, position in positions.items():
            if tp not in self.consumer.assignment():
                continue
            start = (await self.consumer.beginning_offsets([tp]))[tp]
            end = (await self.consumer.end_offsets([tp]))[tp]  # may undercount: then from the start, which is safe
            committed = self._committed.get(tp)
            reading_from = committed if committed is not None and start <= committed <= end else start
            log.warning("position_out_of_range", topic=tp.topic, partition=tp.partition, position=position,
                        log_start=start, log_end=end, committed=committed, reading_from=reading_from,
                        doing="read again, never skipped: a broker that lost records, or retention")
            self.offsets.rewind(tp, reading_from)
            self.consumer.seek(tp, reading_from)

    def each(self, records: Records, take: Callable[[TopicPartition, ConsumerRecord], None]) -> None:
        """``take`` every message, each inside the per-item error boundary. Taking a message does no I/O:
        what it sends waits in the agent's outbox for the round's ``flush``, in bulk.

        Most of a replay is skipped in a microsecond or two a message: what is done here for each stays
        as little (no object made for its position, no call for a crash marker that is not set)."""
        set_aside = self._crashes.set_aside
        for tp, messages in records.items():
            for message in messages:
                self._at = tp, message.offset
                if set_aside(tp, message.offset):
                    self.dead_letter(message, "crashed_worker", SET_ASIDE)
                    continue
                try:
                    if CRASH_MARKER:
                        crash_on_message(message.value)
                    take(tp, message)
                except Exception as exc:  # noqa: BLE001 - the boundary: one item's problem is its dead letter
                    log.exception("item_unprocessable", topic=tp.topic, partition=tp.partition, offset=message.offset)
                    self.dead_letter(message, "unprocessable", unprocessable(exc))
            if messages:  # once each is handled: a crash past the boundary leaves the partition's unmarked
                self.offsets.consumed(tp, messages[-1].offset)
        self._at = None

    def dead_letter(self, message: ConsumerRecord, reason: str, text: str) -> None:
        self.letters.append(dead_letter(self._deadletter, message, reason, text, self._max_record_bytes))

    def take_letters(self) -> list[Message]:
        letters, self.letters = self.letters, []
        return letters

    def hold_back(self, paused: bool) -> None:
        """Stop fetching (or go on): the consumer keeps its place in the group meanwhile."""
        if paused != self._paused:
            assignment = self.consumer.assignment()
            (self.consumer.pause if paused else self.consumer.resume)(*assignment)
            self._paused = paused

    # -- committing ------------------------------------------------------------------

    def commit_soon(self) -> None:
        """Commit at the next ``commit`` rather than waiting out the interval."""
        self._soon = True

    async def commit(self, force: bool = False) -> None:
        """Flush the agent; then commit, for the partitions assigned, the offsets before the first
        message not yet done, if the interval is out (or ``force``, or ``commit_soon``)."""
        await self._agent.flush()
        now = self._clock()
        if not (force or self._soon) and now - self._last_commit < self._interval:
            return
        self._last_commit, self._soon = now, False
        if not self.fence.fresh:
            return  # cut off from the group, maybe: what is done is committed once confirmed, or read again
        assignment = self.consumer.assignment() - self._lost
        offsets = {tp: offset for tp, offset in self.offsets.committable().items()
                   if tp in assignment and self._committed.get(tp) != offset and self._within(tp, offset)}
        if offsets and await self._commit(offsets):
            self._committed.update(offsets)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit; whether the broker took it (a confirmation). Refused, the partitions are given up."""
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError as exc:
            await self.give_up(f"the group has moved on: {exc.__cause__ or exc}")
            return False
        except IllegalStateError:  # mid-rebalance: nothing assigned for the moment
            return False
        self.fence.confirm()
        return True

    def _within(self, tp: TopicPartition, offset: int) -> bool:
        """Never commit past what the partition holds: a broker that came back without its data (memory
        storage) would have the group skip whatever is written to the partition next."""
        end = self.consumer.highwater(tp)
        if end is None or offset <= end:
            return True
        log.warning("commit_beyond_end", topic=tp.topic, partition=tp.partition, offset=offset, end=end,
                    doing="not committed: the partition holds less than was read from it")
        return False

    def committed(self, partitions: set[TopicPartition]) -> dict[tuple[str, int], int]:
        """Where the group stands in these partitions, as last committed or read (at their assignment)."""
        return {(tp.topic, tp.partition): self._committed[tp] for tp in partitions if tp in self._committed}

    def lag(self) -> dict[str, int]:
        """Per topic: records of the assigned partitions past the group's committed offset."""
        lag: dict[str, int] = {}
        for tp in self.consumer.assignment():
            end, done = self.consumer.highwater(tp), self._committed.get(tp)
            if end is not None and done is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - done)
        return lag

    # -- fencing ---------------------------------------------------------------------

    async def confirm(self) -> None:
        """Ask the broker whether the partitions are still this member's: commit where the group stands
        again. Partitions given up meanwhile are taken over again if it says yes."""
        assignment = self.consumer.assignment()
        offsets = {tp: self._committed[tp] for tp in assignment if tp in self._committed}
        if not offsets:
            return
        try:
            taken = await self._commit(offsets)
        except KafkaError:
            return  # no answer: not confirmed
        if taken and self._lost:
            await self._take_back(self._lost)

    async def watch_fence(self) -> None:
        """One look at the fence: partitions unconfirmed too long are given up; a confirmation is asked for
        when one is due (also for partitions given up: the broker may not have moved on after all). One is
        asked at a time, and never called off: cut off, aiokafka waits for the broker, and what it answers
        once it is back is still the broker's word."""
        if self._assigned.is_set() and self.fence.lost and self.consumer.assignment():  # none: nothing to lose
            await self.give_up(f"unconfirmed for {self.fence.age():.1f} s, longer than the session timeout "
                               f"({self.fence.lost_after_s:g} s)")
        if self.fence.due and (self._assigned.is_set() or self._lost):
            if self._asking is None or self._asking.done():
                self._asking = asyncio.create_task(self.confirm())
            await asyncio.wait({self._asking}, timeout=self.fence.within_s)

    async def _keep_confirmed(self) -> None:
        while True:
            await asyncio.sleep(self.fence.within_s / 6)
            try:
                await self.watch_fence()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the fence must outlive one bad round: looked at again next time
                log.exception("fence_watch_failed")

    async def give_up(self, why: str) -> None:
        """The partitions are taken to be another member's: what the agent holds of them is dropped, nothing
        is committed, and reading starts again from the last commit if they turn out to be ours after all."""
        if not self._assigned.is_set():
            return  # a rebalance is under way, or they are given up already
        lost = self.consumer.assignment()
        self._generation += 1
        self._assigned.clear()
        self.fence.withdraw()
        self._lost = set(lost)
        log.warning("partitions_lost", partitions=sorted(f"{tp.topic}-{tp.partition}" for tp in lost), reason=why,
                    doing="dropped what is not durable; the group's next owner reads it again")
        await self._agent.hand_back(lost)
        for tp in lost:
            self.offsets.forget(tp)
            if tp in self._committed:
                self.consumer.seek(tp, self._committed[tp])

    async def _take_back(self, partitions: set[TopicPartition]) -> None:
        """The broker confirmed partitions given up: the group never moved on. Taken over again."""
        log.info("partitions_confirmed_again", partitions=len(partitions))
        self._lost = set()
        await self._agent.take_over(partitions)
        self._assigned.set()

    # -- rebalances ------------------------------------------------------------------

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        self._generation += 1
        self._assigned.clear()
        await self._agent.hand_back(revoked)
        await self.commit(force=True)  # not if unconfirmed: given up after a cut, it is another's to commit
        self.fence.withdraw()
        self._lost = set()
        for tp in revoked:
            self.offsets.forget(tp)
            self._committed.pop(tp, None)
        self._paused = False  # a new assignment is fetched from again

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        self.fence.confirm()  # the group's coordinator has just handed these partitions over
        delay_s = TAKE_OVER_RETRY_S
        while True:
            try:
                await self._note_committed(assigned)
                await self._agent.take_over(assigned)
                break
            except Exception as exc:  # noqa: BLE001 - raised here, aiokafka would log it and read nothing, ever
                log.warning("take_over_failed", error=f"{type(exc).__name__}: {exc}", retry_in_s=delay_s,
                            doing="nothing is read from these partitions until it is taken over; tried again")
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 30.0)
        self._assigned.set()

    async def _note_committed(self, assigned: set[TopicPartition]) -> None:
        """Where the group stands in the partitions just assigned (the log start if nowhere yet)."""
        if not assigned:
            return
        starts = await self.consumer.beginning_offsets(list(assigned))
        for tp in assigned:
            committed = await self.consumer.committed(tp)
            self._committed[tp] = committed if committed is not None else starts[tp]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka has no type hints
    def __init__(self, intake: Intake) -> None:
        self._intake = intake

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._intake.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._intake.assigned(set(assigned))
