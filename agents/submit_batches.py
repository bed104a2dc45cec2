"""Submit batches: create each batch whose intent is recorded, then hand it to the poller.

A batch is created only while the broker has lately confirmed that its home partition is still
this worker's (``streams.kafka.fence``), and at most once. Before any create call that might repeat an
earlier one (a resumed intent, a retry after a timeout) the provider is asked
whether the batch already exists (``find``); where it cannot tell yet (``NotYetKnown``:
Anthropic, a batch of the same size too recent to be known another worker's), the
batch is held back until it can. The provider's id is recorded before the batch's
items count as submitted. A resumed batch is created without the items that have succeeded
since its intent (``streams.refusals.set_done_aside``). A provider that cannot be reached is tried again with
backoff; one that refuses the batch turns it into one failure event per item, never
a crash. One that refuses it for what some items hold has those items fail and the
others submitted again (``streams.refusals``).
One that has no room for another batch (Bedrock's quota of jobs in progress, a full
queue, a 429 on create), or refuses it for the account's sake (a key, a permission,
credit: alerted once), is asked again later, for as long as it takes, while the
batches behind it go on. So is a batch whose submission fails in tierline's own code
(``submit_failed``, alerted once): never dropped.

With ``TIERLINE_ENQUEUED_TOKEN_LIMITS``, a batch is created only when its estimated tokens
fit beside those of its model's batches still at the provider, counted over the whole
deployment from ``tierline.batches``: it is held until then (``batch_held_for_queue``), and
split first if it is larger than the limit on its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Callable

import structlog
from aiokafka.errors import KafkaError
from mode import Service

from core.admission import parts_needed
from providers import AccountRefused, BatchProvider, ItemsRefused, NotYetKnown, ProviderBusy, ProviderError
from schemas import HELD_FOR_QUEUE, BatchProgress, BatchRecord, ErrorInfo
from streams import metrics
from streams.alerts import alert_or_log
from streams.kafka.publish import Message
from streams.state.batch_log import BatchJob
from streams.crashpoints import crash_point
from streams.emit import Emitter
from streams.refusals import set_culprits_aside, set_done_aside, split
from streams.runtime import Runtime

__all__ = ["SubmitBatches"]

log = structlog.get_logger(__name__)

CREATE_ATTEMPTS = 5
ROOM_FIRST_WAIT_S, ROOM_MAX_WAIT_S = 5.0, 300.0  # waits for a provider with no room, doubling
QUEUE_WAIT_S = 2.0  # how often a batch held for the enqueued-token limit looks again


class SubmitBatches(Service):
    """The submitter agent: one batch at a time, in the order their intents were recorded.

    Its queue is a plain asyncio queue, not a Faust channel: Faust clears channel
    queues whenever its own consumer group rebalances, which would drop batches.
    """

    def __init__(self, runtime: Runtime, poll: Callable[[BatchJob], None]) -> None:
        super().__init__()
        self.runtime = runtime
        self._poll = poll
        self._queue: asyncio.Queue[BatchJob] = asyncio.Queue()
        self._room_waits: dict[str, float] = {}  # batch key → its next wait for room at its provider
        self._held: set[str] = set()  # batch keys held for the enqueued-token limit, logged once each
        self._faulted: set[str] = set()  # batch keys whose submission failed in tierline's own code: alerted

    def put(self, job: BatchJob) -> None:
        self._queue.put_nowait(job)

    async def on_start(self) -> None:
        if self.runtime.settings.token_limits:
            await self.runtime.enqueued.start()

    async def on_stop(self) -> None:
        await self.runtime.enqueued.stop()

    @Service.task
    async def _run(self) -> None:
        runtime = self.runtime
        while not self.should_stop:
            job = await self._queue.get()
            if not runtime.ownership.current(job.generation):
                self._room_waits.pop(job.record.batch_key, None)
                continue  # handed back in a rebalance: the home partition's owner resumes it
            if (wait := job.not_before - runtime.clock()) > 0:
                asyncio.get_running_loop().call_later(wait, self.put, job)  # the batches behind it go first
                continue
            try:
                if runtime.settings.token_limits and not await self._admitted(job):
                    continue
                async with runtime.ownership.acting(job.generation) as ours:
                    if ours:
                        await submit(runtime, job, self._poll, self.put)
                self._room_waits.pop(job.record.batch_key, None)
                self._faulted.discard(job.record.batch_key)
            except NoRoom as exc:
                runtime.enqueued.enqueued.forget(job.record.batch_key)
                refused = isinstance(exc.cause, AccountRefused)
                if refused and job.record.batch_key not in self._room_waits:  # once per batch, not at every try
                    await alert_or_log(runtime, job.record, "provider_refused", f"the provider refused the batch "
                                       f"for the account's sake ({exc.cause}); nothing failed: it is tried again "
                                       "until the cause is fixed")
                self._later(exc.job, exc.cause)
            except Exception as exc:  # noqa: BLE001 - a fault of tierline's own: the batch stays in hand
                runtime.enqueued.enqueued.forget(job.record.batch_key)
                log.exception("submit_failed", batch_key=job.record.batch_key)
                if job.record.batch_key not in self._faulted:  # once per batch
                    self._faulted.add(job.record.batch_key)
                    await alert_or_log(runtime, job.record, "submit_failed", f"submitting the batch failed "
                                       f"({type(exc).__name__}: {exc}); nothing failed: it is tried again, with a "
                                       "growing wait")
                # Looked for first next time: the step that failed may have come after the create.
                self._later(dataclasses.replace(job, resumed=True), exc, "batch_submit_again")

    async def _admitted(self, job: BatchJob) -> bool:
        """Whether the batch fits the model's enqueued-token limit now; if not, it is held (or split)."""
        runtime, record = self.runtime, job.record
        enqueued = runtime.enqueued.enqueued
        limit = enqueued.limit(record.provider, record.model)
        if limit is None:
            return True
        if record.estimated_tokens > limit and job.spooled.count > 1:
            async with runtime.ownership.acting(job.generation) as ours:
                if ours:
                    await split(runtime, job, parts_needed(record.estimated_tokens, limit, job.spooled.count),
                                self.put)
            return False
        await runtime.enqueued.catch_up()
        if not enqueued.fits(record.provider, record.model, record.estimated_tokens, record.batch_key):
            if record.batch_key not in self._held:
                self._held.add(record.batch_key)
                metrics.batch_held_for_queue.labels(record.provider).inc()
                log.info("batch_held_for_queue", batch_key=record.batch_key, provider=record.provider,
                         model=record.model, estimated_tokens=record.estimated_tokens, limit=limit,
                         waiting=enqueued.waiting(record.provider, record.model))
                held = BatchProgress(batch_key=record.batch_key, provider=record.provider, batch_id="",
                                     provider_status=HELD_FOR_QUEUE, counts={}, expires_at=None,
                                     changed_at=runtime.clock())
                await runtime.publisher.publish([Message(runtime.settings.topics.batch_status, record.batch_key,
                                                         held)])  # for tierline status
            asyncio.get_running_loop().call_later(QUEUE_WAIT_S, self.put, job)
            return False
        self._held.discard(record.batch_key)
        enqueued.note(record.batch_key, record.provider, record.model, record.estimated_tokens)  # counted at once
        return True

    def _later(self, job: BatchJob, why: Exception, event: str = "batch_waiting_for_room") -> None:
        """Back in the queue after a wait; the batches behind it go first."""
        key = job.record.batch_key
        wait = self._room_waits.get(key, ROOM_FIRST_WAIT_S)
        self._room_waits[key] = min(2 * wait, ROOM_MAX_WAIT_S)
        log.info(event, batch_key=key, provider=job.record.provider, error=str(why), retry_in_s=wait)
        asyncio.get_running_loop().call_later(wait, self.put, job)


class NoRoom(Exception):
    """The provider refused to create the batch for now (``cause``: no room for it, or the account); ``job``
    is the batch to ask again with, marked resumed only if an earlier call may have created it after all."""

    def __init__(self, cause: ProviderBusy | AccountRefused, job: BatchJob) -> None:
        super().__init__(str(cause))
        self.cause, self.job = cause, job


async def submit(runtime: Runtime, job: BatchJob, poll: Callable[[BatchJob], None],
                 resubmit: Callable[[BatchJob], None]) -> None:
    record, spooled = job.record, job.spooled
    delay = 1.0
    # A fresh intent cannot have a batch yet; a resumed one may (the worker died after create).
    may_exist = job.resumed
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            provider = runtime.provider(record.provider)  # refuses when its settings are missing
            batch_id = await _found(runtime, provider, job) if may_exist else None
            if batch_id is None and job.resumed and await set_done_aside(runtime, job, resubmit):
                return  # replaced by a batch without what succeeded meanwhile, or by nothing at all
            if batch_id is None:
                if not runtime.ownership.holds(job.generation):  # unconfirmed since the section began
                    resubmit(dataclasses.replace(job, resumed=may_exist))  # the queue waits for the fence
                    return
                batch_id = await provider.submit(spooled)
                crash_point("after_create")
            break
        except (ProviderBusy, AccountRefused) as exc:
            # Nothing was created by this call: asked again later, not looked for first unless an earlier
            # call may have created it. Looking finds any batch of the same size created since this one's
            # intent (Anthropic's carry no other mark), another worker's not yet recorded among them.
            raise NoRoom(exc, dataclasses.replace(job, resumed=may_exist)) from exc
        except NotYetKnown as exc:  # a batch of its shape may be another worker's: asked again once it is recorded
            log.info("orphan_search_waits", batch_key=record.batch_key, retry_in_s=round(exc.retry_in_s, 1),
                     reason=str(exc))
            resubmit(dataclasses.replace(job, resumed=True, not_before=runtime.clock() + exc.retry_in_s))
            return
        except ItemsRefused as exc:  # nothing was created
            await set_culprits_aside(runtime, job, exc, resubmit)
            return
        except ProviderError as exc:
            may_exist = True  # the failed call may have created it all the same
            if exc.retryable and attempt < CREATE_ATTEMPTS:
                log.warning("submit_retrying", batch_key=record.batch_key, error=str(exc), attempt=attempt)
                await asyncio.sleep(delay)
                delay *= 2
                continue
            metrics.batch_rejected.labels(record.provider).inc()
            log.error("batch_rejected", batch_key=record.batch_key, error=str(exc), retryable=exc.retryable)
            kind = "provider_unavailable" if exc.retryable else "batch_rejected"
            tally = await Emitter(runtime).fail_batch(spooled, None, ErrorInfo(type=kind, message=str(exc)),
                                                      exc.retryable)
            await runtime.batch_log.close(dataclasses.replace(
                record, state="rejected", at=runtime.clock(), failed=tally.failed, retried=tally.retried))
            runtime.ownership.release(spooled.key)
            runtime.spool.remove(spooled.key)
            return
    submitted = dataclasses.replace(record, state="submitted", batch_id=batch_id, at=runtime.clock())
    if not await _recorded(runtime, submitted, job.generation):
        log.warning("batch_handed_back_unrecorded", batch_key=record.batch_key, batch_id=batch_id,
                    doing="its next owner finds the batch at the provider (orphan search) rather than creating it")
        runtime.spool.remove(spooled.key)
        return
    metrics.batch_submitted.labels(record.provider).inc()
    log.info("batch_submitted", batch_key=record.batch_key, batch_id=batch_id, items=spooled.count,
             provider=record.provider)
    poll(dataclasses.replace(job, record=submitted))


async def _recorded(runtime: Runtime, record: BatchRecord, generation: int) -> bool:
    """Record the provider's batch id: again while Kafka cannot take it, for as long as the batch is ours."""
    delay_s = 1.0
    while True:
        try:
            await runtime.batch_log.record(record)
            return True
        except KafkaError as exc:
            log.warning("batch_record_failed", batch_key=record.batch_key, batch_id=record.batch_id, error=repr(exc),
                        retry_in_s=delay_s)
        if not runtime.ownership.current(generation):
            return False
        await asyncio.sleep(delay_s)
        delay_s = min(2 * delay_s, 30.0)


async def _found(runtime: Runtime, provider: BatchProvider, job: BatchJob) -> str | None:
    # Batches recorded by other batch records (this worker's, the dead one's) are not orphans.
    claimed = await runtime.batch_log.claimed_ids()
    batch_id = await provider.find(job.spooled, job.record.created_at, claimed)
    if batch_id is not None:
        log.warning("orphan_adopted", batch_key=job.record.batch_key, batch_id=batch_id)
    return batch_id
