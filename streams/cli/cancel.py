"""``tierline cancel``: stop a batch at its provider, and say what becomes of its unfinished items.

The operator's choice is written to the batch's record first (``cancel``: ``retry``
or ``fail``), then the provider is asked to cancel. The worker following the batch
reads the choice when the batch ends: items that never ran are retried one by one,
or end with a final failure. Items that finished before the cancel keep their results.
"""

from __future__ import annotations

import dataclasses
import time

from providers import ProviderError, make_provider
from schemas import BatchRecord
from streams.state.batch_log import UNFINISHED, BatchLog
from streams.kafka.publish import Publisher
from streams.settings import Settings
from streams.kafka.topics import require_topics

__all__ = ["cancel_batch", "CancelError"]


class CancelError(Exception):
    """The batch cannot be cancelled: the message says why."""


async def cancel_batch(settings: Settings, ref: str, then: str) -> BatchRecord:
    """Cancel the batch whose provider id or tierline batch key is ``ref``; ``then`` is retry or fail."""
    await require_topics(settings, "batches")
    publisher = Publisher(settings.kafka, "cancel")
    try:
        await publisher.start()
        log = BatchLog(settings, publisher)
        record = await log.latest(set(range(settings.partitions)), lambda r: ref in (r.batch_id, r.batch_key))
        if record is None:
            raise CancelError(f"no batch {ref!r} on {settings.topics.batches}: give a provider batch id or a "
                              "tierline batch key (is TIERLINE_TOPIC_PREFIX right?)")
        if record.state not in UNFINISHED:
            raise CancelError(f"batch {ref!r} has already {record.state}: nothing to cancel")
        if record.batch_id is None:
            raise CancelError(f"batch {ref!r} is not at its provider yet: try again in a moment")
        chosen = dataclasses.replace(record, cancel=then, at=time.time())
        await log.record(chosen)
        try:
            provider = make_provider(record.provider, settings)
        except ProviderError as exc:  # its settings are missing here
            raise CancelError(str(exc)) from exc
        try:
            await provider.cancel(record.batch_id)
        except ProviderError as exc:
            raise CancelError(f"{record.provider} would not cancel {record.batch_id}: {exc}") from exc
        finally:
            await provider.close()
        return chosen
    finally:
        await publisher.stop()
