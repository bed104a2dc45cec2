"""Poll batches: follow every submitted batch until it ends, then emit its items' events.

Each batch is followed by its own task, polling at an interval that backs off
while the provider's status stays the same. When the batch ends its results are
streamed and turned into result, failure and retry events in bulk.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from agents.submit_batches import Submitted
from core.retry import PollBackoff
from providers import BatchStatus, ProviderError
from schemas import BatchRecord, ErrorInfo
from streams.app import app, runtime, to_poll
from streams.emit import Emitter, Tally

__all__ = ["poll_batches"]

log = structlog.get_logger(__name__)

_following: set[asyncio.Task[None]] = set()


@app.agent(to_poll)
async def poll_batches(submitted):  # type: ignore[no-untyped-def]
    """Start following each submitted batch."""
    async for job in submitted:
        task = asyncio.create_task(follow(job), name=f"follow-{job.batch_id}")
        _following.add(task)
        task.add_done_callback(_following.discard)


async def follow(job: Submitted) -> None:
    settings = runtime.settings
    provider = runtime.provider(job.spooled.group.provider)
    backoff = PollBackoff(settings.poll_initial_s, settings.poll_max_s)
    bound = log.bind(batch_id=job.batch_id, batch_key=job.spooled.key)
    status: BatchStatus | None = None
    while status is None or not status.ended:
        try:
            status = await provider.status(job.batch_id)
            seen: object = (status.status, tuple(sorted(status.counts.items())))
        except ProviderError as exc:
            bound.warning("poll_failed", error=str(exc))
            seen = "unreachable"
        if status is None or not status.ended:
            await asyncio.sleep(backoff.next_interval(seen))
    bound.info("batch_ended", status=status.status, counts=status.counts)
    emitter = Emitter(runtime)
    if status.rejection:
        error = ErrorInfo("batch_rejected", status.rejection)
        tally = await emitter.fail_batch(job.spooled, job.batch_id, error, retryable=False)
    else:
        tally = await _download(emitter, job, backoff)
    record = BatchRecord(job.spooled.key, job.spooled.group.provider, "ended", job.spooled.count,
                         job.spooled.group.endpoint, job.spooled.group.model, job.batch_id, status.status,
                         time.time(), tally.succeeded, tally.failed, tally.retried,
                         tally.input_tokens, tally.output_tokens)
    await runtime.publisher.publish([(settings.topic("batches"), job.spooled.key, record, None)])
    runtime.spool.remove(job.spooled.key)
    bound.info("batch_settled", succeeded=tally.succeeded, failed=tally.failed, retried=tally.retried)


async def _download(emitter: Emitter, job: Submitted, backoff: PollBackoff) -> Tally:
    """Results are fetched as soon as the batch ends, and again until they arrive whole."""
    provider = runtime.provider(job.spooled.group.provider)
    while True:
        try:
            return await emitter.settle_batch(job.spooled, job.batch_id, provider.results(job.batch_id))
        except ProviderError as exc:
            log.warning("results_download_failed", batch_id=job.batch_id, error=str(exc))
            await asyncio.sleep(backoff.next_interval("download_failed"))
