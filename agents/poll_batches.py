"""Poll batches: follow every submitted batch until it ends, then emit its items' events.

Each batch is polled at an interval that backs off while the provider's status
stays the same, or sooner when the provider's running count of its requests foretells
its end (``core.deadlines.forecast_end``), a task per poll and a timer in between;
statuses are read by listing the provider's batches, many to a request
(``providers.status_board``).
When the batch ends its results are streamed and turned into result, failure and retry
events in bulk; only then is the batch recorded as ended, so a crash before that
settles it again (the same result events, once more) rather than losing it.

Alerts (``tierline.alerts`` and the log): a batch whose status has not changed for
``TIERLINE_STALL_AFTER_S`` (still polled); one past the provider's 24 h window (then
cancelled, its unfinished items retried one by one); results that cannot be
downloaded close to the provider's retention deadline (still tried).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Callable

import structlog

from core.deadlines import FORECAST_MIN_S, StallWatch, forecast_end, gone, past_expiry, results_at_risk, straggling
from core.retry import CANCELLED_ERROR_TYPES, PollBackoff
from providers import BatchNotFound, BatchProvider, BatchStatus, ItemsRefused, ProviderError
from schemas import AlertKind, BatchProgress, BatchRecord, ErrorInfo
from streams import metrics
from streams.kafka.publish import Message
from streams.state.batch_log import BatchJob
from streams.alerts import alert, alert_or_log
from streams.emit import Emitter, Tally
from streams.refusals import requeue, set_culprits_aside
from streams.runtime import Runtime

__all__ = ["PollBatches"]

log = structlog.get_logger(__name__)

POLL_JITTER = 0.2  # each poll interval spread by up to a fifth either way
CANCEL_WAIT_S = 30  # how long an expired batch's cancel may take to show before tierline moves on


@dataclasses.dataclass(slots=True)
class _Followed:
    """A submitted batch between its polls: all its follower remembers, and all it holds meanwhile."""

    job: BatchJob
    backoff: PollBackoff
    stall: StallWatch
    interval: float = 0.0  # the last wait between polls: a status read in its latter half is fresh enough
    status: BatchStatus | None = None  # the last status read (a poll that fails leaves it)
    shown: object = None  # the status last written for tierline status
    settling: bool = False  # the batch has ended at the provider: its events are being emitted
    faulted: bool = False  # a fault of tierline's own was alerted for it (once per batch)
    timer: asyncio.TimerHandle | None = None  # the next poll's, while none is under way
    woken: bool = False  # a webhook said it ended: the next poll reads the provider afresh
    forecast: bool = False  # the next poll is at the end its progress foretells: it reads the provider afresh


class PollBatches:
    """The poller agent: follows each submitted batch until it has settled.

    Between two polls a batch is a timer (``call_later``) and a ``_Followed``; each poll runs as a
    task, which a rebalance cancels, and the poll that finds the batch ended settles it. Batches sit
    at the provider for hours, hundreds at a time: a suspended task per batch, with its coroutine
    frames, cost about 2 KB each for all that time.
    """

    def __init__(self, runtime: Runtime, resubmit: Callable[[BatchJob], None],
                 announced: Callable[[], set[str]] = set) -> None:
        self.runtime = runtime
        self._resubmit = resubmit  # new batches of the items a refused batch did not refuse
        self._following: dict[str, _Followed] = {}  # batch key → its follower, for the metrics
        self._announced = announced  # the providers whose webhooks this worker verifies (agents.take_webhooks)

    def put(self, job: BatchJob) -> None:
        settings = self.runtime.settings
        # A provider that announces its batches' ends is polled less: polling is then the safety net.
        longest = settings.webhook_poll_max_s if job.record.provider in self._announced() else settings.poll_max_s
        followed = _Followed(job, PollBackoff(settings.poll_initial_s, max(longest, settings.poll_initial_s),
                                              jitter=POLL_JITTER),
                             StallWatch(settings.stall_after_s, self.runtime.clock))
        self._following[job.record.batch_key] = followed
        self._poll(followed)

    def wake(self, provider: str, batch_id: str) -> bool:
        """A webhook says the batch ended: poll it now, if this worker follows it (and no poll is under way, which
        reads its status anyway). Whether this worker follows it."""
        for followed in self._following.values():
            record = followed.job.record
            if record.batch_id == batch_id and record.provider == provider:
                if followed.timer is not None:
                    followed.timer.cancel()
                    followed.woken = True
                    self._poll(followed)
                return True
        return False

    def unchanged(self) -> list[tuple[BatchRecord, str, float]]:
        """Each batch this worker follows now: its record, the provider's last word of it (``unreachable`` if none
        yet), and for how many seconds that word has not changed."""
        current = self.runtime.ownership.current
        return [(f.job.record, f.status.status if f.status else "unreachable", f.stall.unchanged_s())
                for f in self._following.values() if current(f.job.generation)]

    def _poll(self, followed: _Followed) -> None:
        followed.timer = None
        runtime, record = self.runtime, followed.job.record
        if not runtime.ownership.current(followed.job.generation):
            self._let_go(record)  # handed back in a rebalance (meanwhile, for a timer): its new owner resumes it
            return
        runtime.ownership.follow(asyncio.create_task(self._poll_logged(followed), name=f"poll-{record.batch_id}"))

    async def _poll_logged(self, followed: _Followed) -> None:
        runtime, record = self.runtime, followed.job.record
        again = False
        try:
            if again := await _poll_once(runtime, followed, self._resubmit):
                followed.timer = asyncio.get_running_loop().call_later(followed.interval, self._poll, followed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a fault of tierline's own: the batch stays in hand
            again = await self._faulted(followed, exc)
        finally:
            if not again:
                self._let_go(record)

    async def _faulted(self, followed: _Followed, exc: Exception) -> bool:
        """Polling or settling the batch failed in tierline's own code: said (once per batch, as an alert), and
        tried again after a wait that grows while the fault stays. Whether it is followed still."""
        record = followed.job.record
        kind: AlertKind = "settle_failed" if followed.settling else "poll_failed"
        log.exception(kind, batch_key=record.batch_key, batch_id=record.batch_id)
        if not followed.faulted:
            followed.faulted = True
            await alert_or_log(self.runtime, record, kind, f"{'settling' if followed.settling else 'polling'} the "
                               f"batch failed ({type(exc).__name__}: {exc}); nothing failed: it is tried again, with "
                               "a growing wait")
        followed.interval = followed.backoff.next_interval(kind)
        followed.timer = asyncio.get_running_loop().call_later(followed.interval, self._poll, followed)
        return True

    def _let_go(self, record: BatchRecord) -> None:
        """The batch is no longer followed here (ended, crashed, or handed back): its status is kept no more."""
        self._following.pop(record.batch_key, None)
        if record.batch_id is not None:
            self.runtime.statuses(record.provider).forget(record.batch_id)


async def _poll_once(runtime: Runtime, followed: _Followed, resubmit: Callable[[BatchJob], None]) -> bool:
    """Ask for the batch's status once and act on it; settle it if it has ended. Whether to poll it again,
    in ``followed.interval`` seconds."""
    settings, job = runtime.settings, followed.job
    record = job.record
    assert record.batch_id is not None
    created = record.created_at or record.at
    woken, followed.woken = followed.woken, False
    try:
        fresh_s = 0.0 if woken or followed.forecast else followed.interval / 2
        followed.status = await runtime.statuses(record.provider).status(record.batch_id, created, fresh_s)
        seen: object = followed.status  # compared whole: a signature built from it is one more object a batch
    except BatchNotFound as exc:
        if gone(created, runtime.clock(), settings.not_found_grace_s):
            await _gone(runtime, job, str(exc))
            return False
        log.info("batch_not_found_yet", batch_id=record.batch_id, batch_key=record.batch_key,
                 error=str(exc))  # right after a create: polled as it was
        seen = "not_found"
    except ProviderError as exc:
        metrics.poll_failed.labels(record.provider).inc()
        log.warning("poll_failed", batch_id=record.batch_id, batch_key=record.batch_key, error=str(exc))
        seen = "unreachable"
    status = followed.status  # this poll's, or the last one read (its expiry still holds while unreachable)
    if status is not None and seen != followed.shown:
        followed.shown = seen
        await _show_progress(runtime, record, status)
    if (unchanged := followed.stall.observe(seen)) is not None:
        state = status.status if status else "unreachable"
        await alert(runtime, record, "stalled", f"provider status {state!r} unchanged for "
                    f"{unchanged:.0f} s; still polling", unchanged)
    if status is not None and status.ended:
        followed.settling = True
        await _ended(runtime, job, status, followed.backoff, resubmit)
        return False
    provider = runtime.provider(record.provider)
    expires_at = status.expires_at if status is not None else None
    windows = settings.catalogue[record.provider].windows
    if past_expiry(windows, record.created_at, runtime.clock(), settings.expiry_grace_s, expires_at):
        await alert(runtime, record, "expired", "past the provider's expiry and not ended: "
                    "cancelling it and retrying its unfinished items one by one")
        await _ended(runtime, job, await _cancel_quietly(provider, record.batch_id), followed.backoff, resubmit,
                     abandoned=True)
        return False
    if straggling(record.deadline, runtime.clock(), settings.async_sla_s):
        divert = (f"straggler: batch {record.batch_id} had not ended {settings.async_sla_s:.0f} s "
                  "(TIERLINE_ASYNC_SLA_S) before the item's deadline, so it was taken out and called "
                  "through the async tier at full price")
        log.warning("batch_straggling", batch_id=record.batch_id, batch_key=record.batch_key,
                    deadline=record.deadline, status=status.status if status else None)
        await _ended(runtime, job, await _cancel_quietly(provider, record.batch_id), followed.backoff, resubmit,
                     abandoned=True, divert=divert)
        return False
    # Woken by a webhook and not ended yet (a listing read a moment too early): soon again, not at the backoff's
    # longest. The backoff starts again when the batch's state changes, not at each of its counts: a batch whose
    # items complete one by one would otherwise be polled at the initial interval for as long as it runs.
    phase: object = status.status if status is not None and seen is status else seen
    followed.interval = settings.poll_initial_s if woken else followed.backoff.next_interval(phase)
    # A batch whose provider counts its requests as they run is polled when that pace says it will be done, if
    # that is sooner. The pace is of when the count was read.
    followed.forecast = False
    if status is not None and seen is status:
        now = runtime.clock()
        read_at = now - runtime.statuses(record.provider).age_s(record.batch_id)
        if (end := forecast_end(created, read_at, status.progress)) is not None and end - now < followed.interval:
            followed.interval, followed.forecast = max(end - now, FORECAST_MIN_S), True
    return True


async def _ended(runtime: Runtime, job: BatchJob, status: BatchStatus, backoff: PollBackoff,
                 resubmit: Callable[[BatchJob], None], abandoned: bool = False, divert: str | None = None) -> None:
    """The batch ended (or tierline gave up on it: ``abandoned``, ``divert``): settle it, or send its items
    again where the provider refused them or had no room."""
    record = job.record
    assert record.batch_id is not None
    provider = runtime.provider(record.provider)
    bound = log.bind(batch_id=record.batch_id, batch_key=record.batch_key)
    metrics.batch_ended.labels(record.provider, status.status).inc()
    if not abandoned and divert is None and record.created_at:  # the provider's own turnaround
        metrics.batch_seconds.labels(record.provider).observe(runtime.clock() - record.created_at)
    bound.info("batch_ended", status=status.status, counts=status.counts, abandoned=abandoned)
    if status.refused or status.queue_full:  # those named fail and the rest go again, or all go again later
        async with runtime.ownership.acting(job.generation) as ours:
            if ours:
                if status.queue_full:
                    await requeue(runtime, job, status.queue_full, resubmit)
                else:
                    await set_culprits_aside(runtime, job, ItemsRefused(status.rejection or "", status.refused or {}),
                                             resubmit)
        return
    if status.cancelled:
        # Cancelled by an operator (tierline cancel): their record says what to do with the rest.
        latest = await runtime.batch_log.latest({record.home}, lambda r: r.batch_key == record.batch_key)
        job = dataclasses.replace(job, record=latest or record)
    tally = await _settle(runtime, job, status, backoff, abandoned, divert)
    if tally is not None:
        runtime.ownership.release(record.batch_key)
        runtime.spool.remove(record.batch_key)
        try:
            await provider.discard_input(record.batch_id)
        except ProviderError as exc:  # a file left behind costs storage, not correctness
            bound.warning("input_not_deleted", error=str(exc))
        metrics.batch_settled.labels(record.provider).inc()
        bound.info("batch_settled", results=tally.succeeded, failures=tally.failed, retries=tally.retried,
                   cost_usd=round(tally.cost_usd, 6))


async def _gone(runtime: Runtime, job: BatchJob, why: str) -> None:
    """404 for longer than the grace: the batch is taken to be gone and its items are retried."""
    record, grace = job.record, runtime.settings.not_found_grace_s
    await alert(runtime, record, "batch_not_found", f"the provider has answered 404 for this batch for {grace:.0f} s "
                f"or more since it was created ({why}): taken to be gone, its items are retried")
    async with runtime.ownership.acting(job.generation) as ours:
        if not ours:
            return
        error = ErrorInfo(type="batch_not_found", message=f"the provider lost the batch {record.batch_id}: {why}")
        tally = await Emitter(runtime).fail_batch(job.spooled, record.batch_id, error, retryable=True)
        await runtime.batch_log.close(dataclasses.replace(record, state="ended", provider_status="not_found",
                                                          at=runtime.clock(), failed=tally.failed,
                                                          retried=tally.retried))
    runtime.ownership.release(record.batch_key)
    runtime.spool.remove(record.batch_key)


async def _settle(runtime: Runtime, job: BatchJob, status: BatchStatus, backoff: PollBackoff,
                  abandoned: bool, divert: str | None = None) -> Tally | None:
    """Emit every item's event, then record the batch as ended; again until the results arrive whole.

    Each attempt is a critical section (a rebalance waits for it), begun once the broker has lately
    confirmed the partitions; the waits between attempts are not. None when the batch was handed back
    in a rebalance, or given up cut off from the group, meanwhile.
    An abandoned (expired) batch whose results cannot be had retries all its items.
    """
    record, emitter = job.record, Emitter(runtime)
    assert record.batch_id is not None
    provider = runtime.provider(record.provider)
    warned_at = 0.0
    while True:
        try:
            async with runtime.ownership.acting(job.generation) as ours:
                if not ours:
                    return None
                if status.below_minimum is not None:
                    tally = await _below_minimum(runtime, emitter, job, status.below_minimum, status.rejection or "")
                elif status.rejection:
                    error = ErrorInfo(type="batch_rejected", message=status.rejection)
                    tally = await emitter.fail_batch(job.spooled, record.batch_id, error, retryable=False)
                else:
                    tally = await _emit_results(emitter, provider, job, status, abandoned, divert)
                await runtime.batch_log.close(dataclasses.replace(
                    record, state="ended", provider_status=status.status, at=runtime.clock(),
                    succeeded=tally.succeeded, failed=tally.failed, retried=tally.retried,
                    input_tokens=tally.input_tokens, output_tokens=tally.output_tokens, cost_usd=tally.cost_usd,
                    realtime_usd=sum(tally.model_realtime_usd.values())))
                return tally
        except ProviderError as exc:
            log.warning("results_download_failed", batch_id=record.batch_id, error=str(exc))
            now = runtime.clock()
            left = results_at_risk(runtime.settings.catalogue[record.provider].windows, record.created_at, now,
                                   runtime.settings.results_warn_before_s)
            if left is not None and now - warned_at >= 3_600:
                warned_at = now
                await alert(runtime, record, "results_at_risk", f"results not downloaded yet ({exc}); the "
                            f"provider deletes them in {left / 3600:.0f} h; still trying", left)
            await asyncio.sleep(backoff.next_interval("download_failed"))


async def _below_minimum(runtime: Runtime, emitter: Emitter, job: BatchJob, least: int, words: str) -> Tally:
    """The provider refused the batch for holding fewer items than the account's minimum, higher than tierline
    was told: nothing is wrong with the items. Each goes through the synchronous API (the fallback for small
    groups), or, with that off, fails saying which setting to raise."""
    record, spec = job.record, runtime.settings.catalogue[job.record.provider]
    log.warning("batch_below_account_minimum", batch_key=record.batch_key, batch_id=record.batch_id,
                items=job.spooled.count, minimum=least, configured=spec.limits.min_items,
                called_one_by_one=spec.calls_below_minimum)
    why = (f"the account's minimum per batch is {least} items, more than {spec.min_items_setting} "
           f"({spec.limits.min_items}); raise that setting to {least}")
    if spec.calls_below_minimum:
        return await emitter.divert_batch(job.spooled, f"below_minimum: {words} ({why}), so each is called through "
                                                       f"{job.spooled.group.endpoint} at full price")
    error = ErrorInfo(type="below_minimum_records", message=f"{words}: {why}, then replay these")
    return await emitter.fail_batch(job.spooled, record.batch_id, error, retryable=False)


async def _emit_results(emitter: Emitter, provider: BatchProvider, job: BatchJob, status: BatchStatus,
                        abandoned: bool, divert: str | None = None) -> Tally:
    record = job.record
    assert record.batch_id is not None
    final = CANCELLED_ERROR_TYPES if record.cancel == "fail" else frozenset()
    try:
        return await emitter.settle_batch(job.spooled, record.batch_id, provider.result_lines(record.batch_id),
                                          provider.result_format, final, status.unrun, divert)
    except ProviderError:  # while downloading the results, before any event was emitted
        if not abandoned:
            raise
    expired = ErrorInfo(type="expired", message="the batch was past the provider's 24 h window without ending")
    return await emitter.fail_batch(job.spooled, record.batch_id, expired, retryable=True)


async def _cancel_quietly(provider: BatchProvider, batch_id: str) -> BatchStatus:
    """Ask the provider to stop the batch; whatever it says, tierline stops waiting for it."""
    try:
        await provider.cancel(batch_id)
        for _ in range(CANCEL_WAIT_S):
            status = await provider.status(batch_id)
            if status.ended:
                return status
            await asyncio.sleep(1)
    except ProviderError as exc:
        log.warning("cancel_failed", batch_id=batch_id, error=str(exc))
    return BatchStatus("expired", True, {})


async def _show_progress(runtime: Runtime, record: BatchRecord, status: BatchStatus) -> None:
    assert record.batch_id is not None
    progress = BatchProgress(batch_key=record.batch_key, provider=record.provider, batch_id=record.batch_id,
                             provider_status=status.status, counts=status.counts, expires_at=status.expires_at,
                             changed_at=runtime.clock())
    await runtime.publisher.publish([Message(runtime.settings.topics.batch_status, record.batch_key, progress)])
