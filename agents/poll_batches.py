"""Poll batches: follow every submitted batch until it ends, then emit its items' events.

Each batch is followed by its own task, polling at an interval that backs off
while the provider's status stays the same. When the batch ends its results are
streamed and turned into result, failure and retry events in bulk; only then is
the batch recorded as ended, so a crash before that settles it again (the same
result events, once more) rather than losing it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import structlog

from core.retry import PollBackoff
from providers import BatchStatus, ProviderError
from schemas import ErrorInfo
from streams.batch_log import BatchJob
from streams.emit import Emitter, Tally
from streams.runtime import Runtime

__all__ = ["PollBatches"]

log = structlog.get_logger(__name__)


class PollBatches:
    """The poller agent: a task per submitted batch, until it has settled."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def put(self, job: BatchJob) -> None:
        runtime = self.runtime
        if job.generation != runtime.generation:
            return  # handed back in a rebalance: the home partition's owner resumes it
        task = asyncio.create_task(follow(runtime, job), name=f"follow-{job.record.batch_id}")
        runtime.followers.add(task)
        task.add_done_callback(runtime.followers.discard)


async def follow(runtime: Runtime, job: BatchJob) -> None:
    settings, record = runtime.settings, job.record
    assert record.batch_id is not None
    provider = runtime.provider(record.provider)
    backoff = PollBackoff(settings.poll_initial_s, settings.poll_max_s)
    bound = log.bind(batch_id=record.batch_id, batch_key=record.batch_key)
    status: BatchStatus | None = None
    while status is None or not status.ended:
        try:
            status = await provider.status(record.batch_id)
            seen: object = (status.status, tuple(sorted(status.counts.items())))
        except ProviderError as exc:
            bound.warning("poll_failed", error=str(exc))
            seen = "unreachable"
        if status is None or not status.ended:
            await asyncio.sleep(backoff.next_interval(seen))
    bound.info("batch_ended", status=status.status, counts=status.counts)
    tally = await _settle(runtime, job, status, backoff)
    if tally is not None:
        runtime.owned.discard(record.batch_key)
        runtime.spool.remove(record.batch_key)
        bound.info("batch_settled", succeeded=tally.succeeded, failed=tally.failed, retried=tally.retried)


async def _settle(runtime: Runtime, job: BatchJob, status: BatchStatus, backoff: PollBackoff) -> Tally | None:
    """Emit every item's event, then record the batch as ended; again until the results arrive whole.

    Each attempt is a critical section (a rebalance waits for it); the waits between
    attempts are not. None when the batch was handed back in a rebalance meanwhile.
    """
    record, emitter = job.record, Emitter(runtime)
    assert record.batch_id is not None
    provider = runtime.provider(record.provider)
    while True:
        try:
            async with runtime.critical():
                if job.generation != runtime.generation:
                    return None
                if status.rejection:
                    error = ErrorInfo("batch_rejected", status.rejection)
                    tally = await emitter.fail_batch(job.spooled, record.batch_id, error, retryable=False)
                else:
                    outcomes = provider.results(record.batch_id)
                    tally = await emitter.settle_batch(job.spooled, record.batch_id, outcomes)
                await runtime.batch_log.close(dataclasses.replace(
                    record, state="ended", provider_status=status.status, at=time.time(),
                    succeeded=tally.succeeded, failed=tally.failed, retried=tally.retried,
                    input_tokens=tally.input_tokens, output_tokens=tally.output_tokens))
                return tally
        except ProviderError as exc:
            log.warning("results_download_failed", batch_id=record.batch_id, error=str(exc))
            await asyncio.sleep(backoff.next_interval("download_failed"))
