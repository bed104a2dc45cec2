"""Submit batches: create each closed batch at its provider, then hand it to the poller.

A provider that cannot be reached is tried again with backoff; a provider that
refuses the batch turns it into one failure event per item, never a crash.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from providers import ProviderError, SpooledBatch
from schemas import BatchRecord, ErrorInfo
from streams.app import app, runtime, to_poll, to_submit
from streams.emit import Emitter

__all__ = ["submit_batches", "Submitted"]

log = structlog.get_logger(__name__)

CREATE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Submitted:
    """A batch the provider accepted, under its provider id."""

    spooled: SpooledBatch
    batch_id: str


@app.agent(to_submit)
async def submit_batches(batches):  # type: ignore[no-untyped-def]
    """Create every closed batch at its provider."""
    async for spooled in batches:
        try:
            await submit(spooled)
        except Exception:  # noqa: BLE001 - one batch's bug must not stop the others
            log.exception("submit_crashed", batch_key=spooled.key)


async def submit(spooled: SpooledBatch) -> None:
    provider = runtime.provider(spooled.group.provider)
    delay = 1.0
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            batch_id = await provider.submit(spooled)
            break
        except ProviderError as exc:
            if exc.retryable and attempt < CREATE_ATTEMPTS:
                log.warning("submit_retrying", batch_key=spooled.key, error=str(exc), attempt=attempt)
                await asyncio.sleep(delay)
                delay *= 2
                continue
            log.error("batch_rejected", batch_key=spooled.key, error=str(exc), retryable=exc.retryable)
            kind = "provider_unavailable" if exc.retryable else "batch_rejected"
            tally = await Emitter(runtime).fail_batch(spooled, None, ErrorInfo(kind, str(exc)), exc.retryable)
            await _record(spooled, "rejected", None, failed=tally.failed, retried=tally.retried)
            _done_with_input(spooled)
            runtime.spool.remove(spooled.key)
            return
    await _record(spooled, "submitted", batch_id)
    _done_with_input(spooled)
    runtime.stats["batches"] += 1
    log.info("batch_submitted", batch_key=spooled.key, batch_id=batch_id, items=spooled.count,
             provider=spooled.group.provider)
    await to_poll.send(value=Submitted(spooled, batch_id))


def _done_with_input(spooled: SpooledBatch) -> None:
    if runtime.window is not None:
        runtime.window.batch_accepted(spooled.key)


async def _record(spooled: SpooledBatch, state: str, batch_id: str | None, **counts: int) -> None:
    record = BatchRecord(spooled.key, spooled.group.provider, state, spooled.count,
                         spooled.group.endpoint, spooled.group.model, batch_id, at=time.time(), **counts)
    await runtime.publisher.publish([(runtime.settings.topic("batches"), spooled.key, record, None)])
