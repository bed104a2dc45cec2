"""Window items: validate work items and accumulate them into capped provider batches.

This is the one hot path of the batch tier, so it reads ``tierline.requests`` and
``tierline.retry`` in bulk with aiokafka's ``getmany`` instead of a Faust stream:
Faust's per-event path tops out near 14,000 events/s here against 450,000/s for
``getmany``. Per message it reads the run the request names (``core.request_head``), and
for one not done yet does one JSON parse and two buffered file appends.

- Bad input goes to ``tierline.deadletter`` with its reason, byte for byte. Everything
  done with one message is inside a per-item error boundary: whatever raises there
  dead-letters that message (``unprocessable``) and the next one is read. A crash past
  the boundary ends the worker at once and is counted at the message (``streams.state.crashes``).
- A custom_id that already succeeded (the ledger; within its re-run, for a
  deliberate reprocess) or is in flight is skipped.
- A retried item waits until its ``not_before`` before it joins a batch. One that waits long is parked
  (``core.parking``): written again at the end of its partition, so that the commit passes the work
  behind it.
- A closed batch is made durable (its intent and items, ``streams.state.batch_log``)
  before the submitter sees it. An offset is committed only once every item
  up to it is dead lettered, skipped, or in a durable batch: a crash replays
  what was not yet in one, and the owner of a batch's home partition resumes
  the rest.
- On a rebalance, open batches are dropped (their items are read again from
  the last commit) and the unfinished batches homed in the partitions now
  assigned are resumed from Kafka.

Reading, the error boundary, commit pacing and the rebalance protocol are the intake's
(``streams.kafka.intake``); this agent says what becomes of a message, and what it holds.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from mode import Service

from core.cost import Billed, estimate_tokens
from core.event_checks import check_retry
from core.limits import BatchGroup, request_limit
from core.offsets import PendingOffsets
from core.waiting import WaitingRetries
from core.outcomes import ItemContext, Placing, attempt_key
from core.request_head import head_in, head_of
from core.routing import Route, needs_of, route
from core.validation import Accepted, Rejected, parse_json, too_deep, validate_doc
from core.window import BatchWindow, OpenBatch
from schemas import AsyncItem, BatchRecord, ErrorInfo, RetryItem, WorkItem, run_key
from streams import metrics
from streams.state.batch_log import BatchJob
from streams.crashpoints import crash_point
from streams.emit import Emitter
from streams.kafka.homes import first_read, forward, home_of
from streams.kafka.intake import Intake, group_consumer
from streams.kafka.publish import Message
from streams.runtime import Runtime
from streams.held_batches import Held, HeldBatches
from streams.parking import Parking
from streams.state.spool import read_contexts

__all__ = ["WindowItems"]

log = structlog.get_logger(__name__)

MAX_POLL_S = 0.5
MAX_RECORDS = 20_000  # per read


def new_batch_key(group: BatchGroup) -> str:
    """tierline's own name for a batch, known before any provider call."""
    return f"tl-{group.provider}-{int(time.time() * 1000)}-{secrets.token_hex(4)}"


class WindowItems(Service):
    """The windowing agent: requests and retries in, durable closed batches out to the submitter.

    ``hand_over`` takes each batch job: a new intent, or a batch resumed after a rebalance.
    ``consumer`` makes its Kafka consumer (tests give a fake one); ``clock`` is the wall clock.
    """

    def __init__(self, runtime: Runtime, hand_over: Callable[[BatchJob], None],
                 clock: Callable[[], float] = time.time,
                 consumer: Callable[[], AIOKafkaConsumer] | None = None) -> None:
        super().__init__()
        self.runtime = runtime
        self.settings = runtime.settings
        self._catalogue = self.settings.catalogue
        self._hand_over = hand_over
        self._clock = clock
        self._make_consumer = consumer or self._group_consumer
        self._requests = self.settings.topics.requests
        self._retry = self.settings.topics.retry
        self._async = self.settings.topics.async_tier
        #: What an attempt's ``Placing`` names as its input (is it a retry?): the topic, in this consumer group. A
        #: new group re-reading the topics (an operator re-consuming them) runs what failed again.
        self._read_from = {False: f"requests@{self.settings.app_id}", True: f"retry@{self.settings.app_id}"}
        self.window = self._new_window()
        self._intake: Intake | None = None
        self._now = 0.0  # the wall clock read once per round
        self._log_skips = False  # whether each skipped duplicate is logged (at debug level), read once per round
        self._filling: dict[str, _Filling] = {}  # what each open batch holds back, costs and is due by
        #: custom_id → the attempt of it in a batch. A retry of a later attempt is not a duplicate: the settle of
        #: the attempt before publishes it, and it may be read before that settle has said the item is out.
        self._in_flight: dict[str, int] = {}
        self._waiting = WaitingRetries()
        self._parking = Parking(runtime, self._waiting, lambda: self._offsets, self._retry, self._read_from[True],
                                clock())
        self._closed: list[OpenBatch] = []  # closed while placing items: made durable after the item step
        self._outbox: list[Message] = []
        self._closing: set[asyncio.Task[None]] = set()  # batches being made durable
        self._held = HeldBatches(runtime, self._release)  # closed batches waiting for room in the daily budget
        self._routed: Counter[str] = Counter()  # items placed per provider, for the metrics
        self._forwards: Counter[str] = Counter()  # records forwarded to their home, per input
        self._partitions = self.settings.partitions
        self._duplicates = 0

    def _new_window(self) -> BatchWindow:
        settings = self.settings
        return BatchWindow(settings.caps, settings.batch_max_wait_s, self._clock, new_batch_key,
                           settings.underfilled_wait_s)

    # -- called by the poller ------------------------------------------------------

    def items_left_batch(self, settled: list[tuple[str, int]]) -> None:
        """These items' attempts settled: each has its result, its final failure, or a retry event."""
        in_flight = self._in_flight
        for custom_id, attempt in settled:
            if in_flight.get(custom_id) == attempt:  # not its next attempt, placed meanwhile
                del in_flight[custom_id]

    # -- read by the metrics and the health check ----------------------------------

    @property
    def ready(self) -> bool:
        """Joined the group, with the ledger loaded and the assigned partitions' batches resumed."""
        return self._intake is not None and self._intake.ready

    @property
    def open_count(self) -> int:
        return len(self.window.open_batches())

    @property
    def held_count(self) -> int:
        return len(self._held)

    def lag(self) -> dict[str, int]:
        """Per input topic: records of the assigned partitions past the last commit."""
        if self._intake is None:
            return {}
        return {self._short(topic): n for topic, n in self._intake.lag().items()}

    def _short(self, topic: str) -> str:
        return "retry" if topic == self._retry else "requests"

    # -- service ---------------------------------------------------------------

    def _group_consumer(self) -> AIOKafkaConsumer:
        # Range assignment keeps requests-N and retry-N with one worker: a retry's batch-mates'
        # offsets and its own are committed by the same member. A fetch of 8 MB is tens of thousands of
        # ordinary items, and bounds what large ones hold in memory (read ahead, then as records).
        return group_consumer(self.settings, "window", partition_assignment_strategy=(RangePartitionAssignor,),
                              max_partition_fetch_bytes=2 << 20, fetch_max_bytes=8 << 20)

    async def on_start(self) -> None:
        await self.runtime.ledger.start()
        if self.runtime.budget.limit_usd:
            await self.runtime.spend.start()
        self._intake = Intake(self._make_consumer(), [self._requests, self._retry], self, self.runtime.crashes,
                              self.settings.topics.deadletter, max_record_bytes=self.settings.kafka_max_record_bytes,
                              fence=self.runtime.ownership.fence)
        await self._intake.start()

    async def on_stop(self) -> None:
        self._held.stop()
        if self._intake is not None:
            await self._intake.stop(self.settings.shutdown_s / 3)
        await self.runtime.ledger.stop()
        await self.runtime.spend.stop()

    @Service.task
    async def _run(self) -> None:
        assert self._intake is not None
        intake = self._intake
        await self.runtime.crashes.guard(self._read(), self.runtime.publisher, lambda: intake.at, "window_items")

    async def _read(self) -> None:
        while not self.should_stop:
            await self.step()

    async def step(self) -> None:
        """One round: read what came (nothing is placed before the resumed batches are known),
        place it, close the batches that are due, publish, commit."""
        assert self._intake is not None
        records = await self._intake.read(self._wait(), MAX_RECORDS)
        await self.runtime.ledger.catch_up()
        if self.runtime.budget.limit_usd:
            await self.runtime.spend.catch_up()
        self._now = now = self._clock()
        self._log_skips = log.is_enabled_for(logging.DEBUG)
        for tp, messages in records.items():
            metrics.items_in.labels(self._short(tp.topic)).inc(len(messages))
        self._intake.each(records, self._take)
        self._release_due(now)
        await self._parking.park(now)
        self._held.release()  # actual costs may have come in under their estimates
        await self._close_placed()
        for batch in self.window.due():
            await self._close(batch)
        await self._intake.commit()
        self._count()

    def _count(self) -> None:
        """Per-item counts go to the metrics once per loop, not once per item."""
        for provider, n in self._routed.items():
            metrics.items_routed.labels("batch", provider).inc(n)
        self._routed.clear()
        for topic, n in self._forwards.items():
            metrics.items_forwarded.labels(topic).inc(n)
        self._forwards.clear()
        if self._duplicates:
            metrics.duplicate_skipped.inc(self._duplicates)
            self._duplicates = 0

    def _wait(self) -> float:
        deadlines = [d for d in (self.window.next_deadline(), self._waiting.next_due) if d]
        if not deadlines:
            return MAX_POLL_S
        return max(0.0, min(MAX_POLL_S, min(deadlines) - self._clock()))

    # -- per message -------------------------------------------------------------

    def _take(self, tp: TopicPartition, message: ConsumerRecord) -> None:
        """One message (the intake runs this inside the per-item error boundary)."""
        retry = tp.topic == self._retry
        # A record forwarded to its home is known by the one it was first read as (``streams.kafka.homes``).
        placing = ((self._read_from[retry], *first) if message.headers and (first := first_read(message))
                   else (self._read_from[retry], tp.partition, message.offset, message.timestamp))
        if (ledger := self.runtime.ledger).any_ended and ledger.has_ended(placing):
            self._duplicates += 1  # read again (a restart, a takeover): its attempt has ended, it is not run again
            return
        if retry:
            self._take_retry(tp, message, self._now)
        else:
            self._take_request(tp, message, placing)

    def _take_request(self, tp: TopicPartition, message: ConsumerRecord, placing: Placing) -> None:
        limit = request_limit(self.settings.kafka_max_record_bytes)
        if len(message.value or b"") > limit:  # tierline's records of it (batch items, retries) would not fit
            self._dead_letter(message, "item_too_large", f"the request is {len(message.value):,} bytes; tierline "
                              f"carries each item in Kafka records of at most {limit:,} bytes "
                              "(TIERLINE_KAFKA_MAX_RECORD_BYTES, less 4 KB)")
            return
        if (head := head_of(message.value)) is not None and (
                self._forwarded(tp, message, head.custom_id) or self._skipped(head.custom_id, head.reprocess)):
            return  # forwarded or skipped before any other check, as most of a replay is
        doc = parse_json(message.value)
        if isinstance(doc, Rejected):
            verdict: Accepted | Rejected = doc
        elif head is None and (head := head_in(doc)) is not None and (
                self._forwarded(tp, message, head.custom_id) or self._skipped(head.custom_id, head.reprocess)):
            return  # one whose head the quick read could not take (see core.request_head)
        else:
            verdict = too_deep(message.value, doc) or validate_doc(doc, self._catalogue)
        if isinstance(verdict, Rejected):
            self._dead_letter(message, verdict.reason, verdict.message)
            return
        item = verdict.item
        reasons = None
        if (needs := needs_of(item, message.timestamp / 1000, self._clock(),
                              self._catalogue[item.provider].flex_models)) is not None:
            decided = route(needs, self.settings.tier_times)
            if decided.tier != "batch":
                self._send_async(item, decided, tp, message)
                return
            reasons = decided.reasons
        context = ItemContext(item.custom_id, 1, tp.partition, item.metadata, item.reprocess, reasons, item.deadline,
                              placing, verdict.answer_schema)
        self._place(verdict, context, tp, message.offset)

    def _forwarded(self, tp: TopicPartition, message: ConsumerRecord, custom_id: str) -> bool:
        """Away from its custom_id's home partition: forwarded there (its offset is committed once the outbox has
        gone), to be read by the home's owner."""
        if (home := home_of(custom_id, self._partitions)) == tp.partition:
            return False
        self._outbox.append(forward(message, custom_id, home))
        self._forwards[self._short(tp.topic)] += 1
        return True

    def _skipped(self, custom_id: str, reprocess: str | None, attempt: int = 1) -> bool:
        """Succeeded (within its re-run, if any), or in a batch at this attempt or a later one: counted as a
        duplicate, and skipped."""
        if self.runtime.ledger.succeeded(run_key(custom_id, reprocess)) or \
                self._in_flight.get(custom_id, 0) >= attempt:
            self._duplicates += 1
            if self._log_skips:  # filtered out, the call would still build a logger, on every replayed item
                log.debug("duplicate_skipped", custom_id=custom_id)
            return True
        return False

    def _send_async(self, item: WorkItem, decided: Route, tp: TopicPartition, message: ConsumerRecord) -> None:
        """To the async-queue agent: its offset is committed once the outbox has gone."""
        tier = decided.tier
        assert tier != "batch", "the batch tier's items are placed, not sent"
        routed = AsyncItem(custom_id=item.custom_id, provider=item.provider, params=item.params, endpoint=item.endpoint,
                           metadata=item.metadata, reprocess=item.reprocess, tier=tier, route=decided.reasons,
                           arrived_at=message.timestamp / 1000, source_partition=tp.partition, deadline=item.deadline,
                           callback_url=item.callback_url, model=item.model, invocation=item.invocation,
                           answer_schema=item.answer_schema)
        self._outbox.append(Message(self._async, item.custom_id, orjson.dumps(routed), tp.partition))
        metrics.items_routed.labels(decided.tier, item.provider).inc()

    def _take_retry(self, tp: TopicPartition, message: ConsumerRecord, now: float) -> None:
        verdict = check_retry(message.value, self._catalogue, self.settings.partitions)
        if isinstance(verdict, Rejected):
            self._dead_letter(message, verdict.reason, verdict.message)
            return
        retry, accepted = verdict
        if self._forwarded(tp, message, retry.custom_id) or self._already_placed(retry):
            return
        if retry.not_before > now:
            self._offsets.hold(tp, message.offset)
            self._waiting.add(retry, accepted, tp, message.offset, message.timestamp)
            return
        self._place_retry(retry, accepted, tp, message.offset, message.timestamp)

    def _already_placed(self, retry: RetryItem) -> bool:
        """Succeeded, in a batch, or ended: a batch settled twice (after a crash) feeds the same retry back twice,
        and parking may leave a retry's old record beside its copy."""
        if (ledger := self.runtime.ledger).any_ended and ledger.has_ended(
                attempt_key(retry.custom_id, retry.reprocess, retry.attempt)):
            self._duplicates += 1
            return True
        return self._skipped(retry.custom_id, retry.reprocess, retry.attempt)

    def _release_due(self, now: float) -> None:
        for due in self._waiting.due(now):
            if self._already_placed(due.retry):  # its twin, read meanwhile, went first
                self._offsets.release(due.source, due.offset)
                continue
            self._place_retry(due.retry, due.accepted, due.source, due.offset, due.timestamp_ms)

    def _place_retry(self, retry: RetryItem, accepted: Accepted, tp: TopicPartition, offset: int,
                     timestamp_ms: int) -> None:
        context = ItemContext(retry.custom_id, retry.attempt, retry.source_partition, accepted.item.metadata,
                              retry.reprocess, retry.route, retry.deadline,
                              (self._read_from[True], tp.partition, offset, timestamp_ms), accepted.answer_schema)
        self._place(accepted, context, tp, offset)

    def _place(self, accepted: Accepted, context: ItemContext, tp: TopicPartition, offset: int) -> None:
        # What can fail on an item's content comes first, before any state changes.
        encoded = orjson.dumps(context.encode())
        estimate = self._estimate(accepted) if self.runtime.budget.limit_usd else 0.0
        placement = self.window.add(accepted.group, context.custom_id, len(accepted.line) + 1)
        if placement.batch_key is None:
            self._duplicates += 1  # the same custom_id twice in one open batch: the first one stands
            self._offsets.release(tp, offset)
        else:
            self._routed[accepted.group.provider] += 1
            if (filling := self._filling.get(placement.batch_key)) is None:
                filling = self._filling[placement.batch_key] = _Filling()
                metrics.batch_opened.labels(accepted.group.provider).inc()
                log.info("batch_opened", batch_key=placement.batch_key, group=accepted.group.label())
            self.runtime.spool.append(placement.batch_key, accepted.line, encoded)
            self._hold_for(filling, tp, offset)
            filling.last[tp] = offset  # read in order: the last is the highest
            self._in_flight[context.custom_id] = context.attempt
            filling.estimated_usd += estimate
            if context.deadline is not None:
                filling.deadline = context.deadline if filling.deadline is None else min(filling.deadline,
                                                                                          context.deadline)
        for batch in placement.closed:  # its files closed now, not at the round's end: one round of small
            self.runtime.spool.close(batch)  # batches may close thousands, each holding two files open
        self._closed.extend(placement.closed)

    def _hold_for(self, filling: _Filling, tp: TopicPartition, offset: int) -> None:
        """Hold the commit back for an item of an open batch. Per partition, the batch's earliest offset is
        all it holds: the commit cannot pass that, nor so any later item of the batch, until the batch is
        durable. An item's own hold (a retry waiting out its delay) is covered by an earlier one."""
        earliest = filling.offsets
        held = earliest.get(tp)
        if held is not None and held < offset:
            self._offsets.release(tp, offset)
            return
        self._offsets.hold(tp, offset)
        if held is not None:
            self._offsets.release(tp, held)
        earliest[tp] = offset

    async def _close_placed(self) -> None:
        closed, self._closed = self._closed, []
        for batch in closed:
            await self._close(batch)

    def _estimate(self, accepted: Accepted) -> float:
        item = accepted.item
        tokens = estimate_tokens(item.params, len(accepted.line), item.endpoint)
        model = accepted.group.model or item.params["model"]
        return self.runtime.prices.batch_usd(item.provider, model, Billed(*tokens))

    def _dead_letter(self, message: ConsumerRecord, reason: str, text: str) -> None:
        assert self._intake is not None
        self._intake.dead_letter(message, reason, text)

    # -- batches and offsets -------------------------------------------------------

    async def _close(self, batch: OpenBatch) -> None:
        spooled = self.runtime.spool.close(batch)
        filling = self._filling.pop(batch.key, None) or _Filling()
        held = Held(spooled, filling.offsets, filling.estimated_usd, filling.deadline, last=filling.last)
        metrics.batch_closed.labels(batch.group.provider, batch.close_reason or "").inc()
        log.info("batch_closed", batch_key=batch.key, group=batch.group.label(), items=batch.count,
                 bytes=batch.size_bytes, reason=batch.close_reason, estimated_usd=round(held.estimated_usd, 4))
        least = self.settings.caps(batch.group.provider).min_items
        if batch.count < least:
            await self._underfilled(held, least, batch.close_reason)
            return
        self._held.add(held)

    async def _underfilled(self, held: Held, least: int, reason: str | None) -> None:
        """Fewer items than the provider accepts in a batch: none is submitted; each is called on its own
        in the async tier (where its spec says so: ``TIERLINE_BEDROCK_SYNC_FALLBACK``), or fails, final, saying so."""
        spooled = held.spooled
        group, waited = spooled.group.label(), self.settings.batch_max_wait_s + self.settings.underfilled_wait_s
        why = (f"within {waited:.0f} s (TIERLINE_BATCH_MAX_WAIT_S + TIERLINE_UNDERFILLED_WAIT_S)"
               if reason == "below_minimum" else f"before the batch reached its byte cap ({reason})")
        short = f"only {spooled.count} items arrived {why}; {spooled.group.provider} needs at least {least} per batch"
        spec = self._catalogue[spooled.group.provider]
        log.warning("batch_below_minimum", batch_key=spooled.key, group=group, items=spooled.count,
                    minimum=least, reason=reason, called_one_by_one=spec.calls_below_minimum)
        if spec.calls_below_minimum:
            await Emitter(self.runtime).divert_batch(
                spooled, f"below_minimum: {short}, so each is called through {spooled.group.endpoint} at full price")
        else:
            error = ErrorInfo(type="below_minimum_records",
                              message=f"{group}: {short}, so it was not submitted. Publish more items for this model, "
                                      f"or lower {spec.min_items_setting} if your account's quota allows fewer; "
                                      "then replay these.")
            await Emitter(self.runtime).fail_batch(spooled, None, error, retryable=False)
        for tp, offset in held.offsets.items():
            self._offsets.release(tp, offset)
        self.runtime.spool.remove(spooled.key)

    def _release(self, held: Held, day: int) -> None:
        ownership = self.runtime.ownership
        ownership.claim(held.spooled.key, self._clock())
        # Begun here, not in the task: a rebalance before the task first runs waits for it as well.
        critical = ownership.begin()
        task = asyncio.create_task(self._make_durable(held, day, self._home(held.spooled.key),
                                                      ownership.generation, critical))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _make_durable(self, held: Held, budget_day: int, home: int, generation: int,
                            end_critical: Callable[[], None]) -> None:
        """Write the batch's intent in the background, so that reading goes on meanwhile, in a critical
        section (a rebalance waits for it) begun when the batch was released. An intent that fails (the
        broker unreachable) is written again, for as long as the batch is ours."""
        spooled, offsets = held.spooled, held.offsets
        try:
            record = await self._write_intent(held, budget_day, home, generation)
        finally:
            end_critical()
        if record is None:  # handed back before it was durable: its items are read again, by their new owner
            self.runtime.ownership.release(spooled.key)
            self.runtime.spool.remove(spooled.key)
            return
        crash_point("after_intent")
        # The batch is durable: its items' offsets may be committed (also in a rebalance, which
        # commits after waiting for this, so that the items' next owner does not read them again).
        for tp, offset in offsets.items():
            self._offsets.release(tp, offset)
        self._intake_now().commit_soon()  # the fewer items read again after a crash, the better
        if self.runtime.ownership.current(generation):
            self._hand_over(BatchJob(record, spooled, generation))
        # else: handed back, and the home partition's owner resumes it

    async def _write_intent(self, held: Held, budget_day: int, home: int, generation: int) -> BatchRecord | None:
        """The batch's intent, written while the broker confirms the partitions; None if the batch stopped
        being ours before it could be (a write that lands all the same is not trusted: ``BatchLog``)."""
        ownership, delay_s = self.runtime.ownership, 1.0
        while True:
            # A rebalance that began after the section did waits for it: the generation is not asked first.
            if ownership.fence.fresh or await ownership.fence.wait_fresh(lambda: ownership.current(generation)):
                try:
                    return await self.runtime.batch_log.intent(held.spooled, home, held.estimated_usd, budget_day,
                                                               deadline=held.deadline, sources=held.sources())
                except KafkaError as exc:  # written again whole: readers keep one copy of each chunk
                    log.warning("intent_failed", batch_key=held.spooled.key, error=repr(exc), retry_in_s=delay_s)
            if not ownership.current(generation):
                return None
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 30.0)

    def _home(self, batch_key: str) -> int:
        """The partition whose owner answers for the batch: one of those assigned to this worker."""
        owned = sorted(tp.partition for tp in self._intake_now().consumer.assignment() if tp.topic == self._requests)
        return owned[zlib.crc32(batch_key.encode()) % len(owned)] if owned else 0

    def _intake_now(self) -> Intake:
        assert self._intake is not None, "WindowItems.on_start() first"
        return self._intake

    @property
    def _offsets(self) -> PendingOffsets:
        return self._intake_now().offsets

    # -- the intake's agent --------------------------------------------------------------

    async def flush(self) -> None:
        """Routed items and dead letters go out (before the offsets past them are committed)."""
        outbox = self._outbox + self._intake_now().take_letters()
        self._outbox = []
        if outbox:
            await self.runtime.publisher.publish(outbox)

    async def hand_back(self, revoked: set[TopicPartition]) -> None:
        """What is durable is resumed by the new owners; the rest is dropped and read again."""
        await self.runtime.ownership.hand_back()  # batches being made durable finish first: committed next
        held = self._held.drop()
        dropped = self.runtime.spool.discard_open() + len(held) + len(self._closed)
        for key in held + [batch.key for batch in self._closed]:
            self.runtime.spool.remove(key)
        self.window = self._new_window()
        self._filling.clear()
        self._waiting.clear()
        self._closed.clear()
        self._in_flight.clear()
        log.info("partitions_revoked", partitions=len(revoked), open_batches_dropped=dropped)

    async def take_over(self, assigned: set[TopicPartition]) -> None:
        """Resume the unfinished batches homed in the partitions assigned, before any item is read."""
        # Successes recorded by whoever had these partitions before must be known first.
        await self.runtime.ledger.catch_up_to_end()
        homes = {tp.partition for tp in assigned if tp.topic == self._requests}
        await self.runtime.batch_log.take(homes)  # what a former owner writes from now on is not trusted
        jobs = await self.runtime.batch_log.unfinished(homes, self.runtime.ownership.generation)
        # A batch already in hand is not resumed twice.
        jobs = [job for job in jobs if not self.runtime.ownership.owns(job.record.batch_key)]
        # Items of batches homed elsewhere that the group's commit did not pass: in flight, not to be placed again.
        elsewhere = await self.runtime.batch_log.held_from(self._intake_now().committed(assigned), homes)
        for custom_id, attempt in elsewhere.items():
            self._in_flight[custom_id] = max(self._in_flight.get(custom_id, 0), attempt)
        for job in jobs:
            self.runtime.ownership.claim(job.record.batch_key, job.record.created_at or job.record.at)
            self._in_flight.update((ctx.custom_id, ctx.attempt) for ctx in read_contexts(job.spooled.items_path))
            metrics.batch_resumed.inc()
            log.info("batch_resumed", batch_key=job.record.batch_key, state=job.record.state,
                     batch_id=job.record.batch_id, items=job.record.item_count)
            self._hand_over(job)
        log.info("partitions_assigned", partitions=sorted(homes), batches_resumed=len(jobs))


@dataclass(slots=True)
class _Filling:
    """An open batch, filling: its earliest input offset per partition (which hold the commit back), its
    estimated cost, its earliest item deadline, its last input offset per partition."""

    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    last: dict[TopicPartition, int] = field(default_factory=dict)
    estimated_usd: float = 0.0
    deadline: float | None = None
