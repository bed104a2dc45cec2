"""Batches the provider would not run as they are: refused for some items, or its queue full.

**Refused for some items.** Anthropic's create answers 400 naming the offending request
(``requests.3.params...``); OpenAI fails the batch at validation with the offending lines.
The items named end with a final failure in the provider's words; every other item goes
again in a new batch. Where the provider named none (a 400 with no index, a 413), the
batch is split in halves and both are submitted again, until the refused items stand
alone: a batch of one that is refused is that item's final failure.

**The queue full** (OpenAI fails a batch that would pass the model's enqueued-token limit with
``token_limit_exceeded``): nothing is wrong with the items, so none fails and no attempt is counted.
The same items go again as a new batch after a wait that doubles each time (5 s to 5 min), with an
alert from the third time on (``requeue``). A batch larger on its own than the model's
``TIERLINE_ENQUEUED_TOKEN_LIMITS`` entry is split into batches that fit (``split``).

**Items done meanwhile.** A batch resumed from its intent (its worker died, or lost its partitions,
before the create) may hold items that have succeeded since, in another batch or tier (a twin retry,
a zombie's batch). Before its create those are taken out (``set_done_aside``): the others go in a
new batch in its place, and the old intent is closed ``superseded``; with none left, nothing is
created.

Crash safety, in this order: the culprits' failure events; the new batches' intents,
each naming the batch it ``replaces``; then the refused batch's record, closed as
rejected. A worker dying before the intents resumes the refused batch (refused again,
its culprits' failures emitted once more: at least once); one dying after them
resumes the new batches and skips the one they replace (``BatchLog.unfinished``).
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from typing import Callable, Iterator

import orjson
import structlog

from core.outcomes import ItemContext
from providers import ItemsRefused
from schemas import BatchState, ErrorInfo
from streams import metrics
from streams.alerts import alert
from streams.state.batch_log import BatchJob
from streams.emit import Emitter
from streams.runtime import Runtime

__all__ = ["set_culprits_aside", "set_done_aside", "requeue", "split"]

log = structlog.get_logger(__name__)

REQUEUE_FIRST_WAIT_S, REQUEUE_MAX_WAIT_S = 5.0, 300.0
REQUEUE_ALERT_AFTER = 3  # times in a row the same items found the queue full


async def set_culprits_aside(runtime: Runtime, job: BatchJob, refusal: ItemsRefused,
                             resubmit: Callable[[BatchJob], None]) -> None:
    """Fail the items the provider refused; hand the others to ``resubmit`` in new batches."""
    record, spooled = job.record, job.spooled
    culprits = refusal.culprits
    if not culprits and spooled.count == 1:
        culprits = {0: str(refusal)}
    halves = not culprits
    failed: list[tuple[ItemContext, ErrorInfo]] = []
    parts: list[list[tuple[bytes, bytes]]] = [[], []] if halves else [[]]
    for index, (context, line) in enumerate(_items(job)):
        if index in culprits:
            failed.append((ItemContext.decode(orjson.loads(context)),
                           ErrorInfo(type="invalid_request", message=culprits[index])))
        else:
            parts[int(halves and index >= spooled.count // 2)].append((line, context))
    log.warning("batch_refused_for_items", batch_key=record.batch_key, provider=record.provider,
                culprits=len(failed), split=halves, error=str(refusal))
    metrics.batch_refused_for_items.labels(record.provider).inc()
    tally = await Emitter(runtime).fail_items(spooled, None, failed)
    jobs = [await _new_batch(runtime, job, part) for part in parts if part]
    await _replaced(runtime, job, jobs, resubmit, failed=tally.failed)


async def set_done_aside(runtime: Runtime, job: BatchJob, resubmit: Callable[[BatchJob], None]) -> bool:
    """Take the items that have succeeded out of a resumed batch not yet created; whether it was replaced (then
    it must not be created: its other items, if any, go in a new batch handed to ``resubmit``)."""
    await runtime.ledger.catch_up_to_end()
    keep: list[tuple[bytes, bytes]] = []
    done: list[tuple[str, int]] = []
    for context, line in _items(job):
        ctx = ItemContext.decode(orjson.loads(context))
        if runtime.ledger.succeeded(ctx.run_key):
            done.append((ctx.custom_id, ctx.attempt))
        else:
            keep.append((line, context))
    if not done:
        return False
    log.warning("resumed_items_done", batch_key=job.record.batch_key, provider=job.record.provider, done=len(done),
                left=len(keep), first=done[0][0], doing="not submitted again: they succeeded in another batch")
    jobs = [await _new_batch(runtime, job, keep)] if keep else []
    await _replaced(runtime, job, jobs, resubmit, state="superseded")
    runtime.items_settled(done)
    return True


async def requeue(runtime: Runtime, job: BatchJob, reason: str, resubmit: Callable[[BatchJob], None]) -> None:
    """The provider's queue was full: the batch's items go again, whole, in a new batch, after a wait."""
    record, spooled = job.record, job.spooled
    times = record.requeues + 1
    wait = min(REQUEUE_FIRST_WAIT_S * 2 ** (times - 1), REQUEUE_MAX_WAIT_S)
    log.warning("batch_requeued", batch_key=record.batch_key, batch_id=record.batch_id, provider=record.provider,
                items=spooled.count, times=times, retry_in_s=wait, error=reason)
    metrics.batch_requeued.labels(record.provider).inc()
    if times >= REQUEUE_ALERT_AFTER:
        await alert(runtime, record, "queue_full", f"the provider's queue for {spooled.group.label()} was full "
                    f"{times} times in a row for these {spooled.count} items ({reason}); they go again in "
                    f"{wait:.0f} s, nothing failed. Lower the load on this model or set its "
                    "TIERLINE_ENQUEUED_TOKEN_LIMITS entry.")
    new = await _new_batch(runtime, job, [(line, context) for context, line in _items(job)], requeues=times)
    await _replaced(runtime, job, [dataclasses.replace(new, not_before=runtime.clock() + wait)], resubmit)


async def split(runtime: Runtime, job: BatchJob, parts: int, resubmit: Callable[[BatchJob], None]) -> None:
    """The batch goes again as ``parts`` batches of consecutive items, in its place; nothing fails."""
    record = job.record
    items = [(line, context) for context, line in _items(job)]
    size = math.ceil(len(items) / parts)
    log.warning("batch_split_for_queue", batch_key=record.batch_key, provider=record.provider, items=len(items),
                parts=parts, estimated_tokens=record.estimated_tokens)
    jobs = [await _new_batch(runtime, job, items[at:at + size]) for at in range(0, len(items), size)]
    await _replaced(runtime, job, jobs, resubmit)


async def _replaced(runtime: Runtime, job: BatchJob, jobs: list[BatchJob], resubmit: Callable[[BatchJob], None],
                    failed: int = 0, state: BatchState = "replaced") -> None:
    """The new batches' intents are written: close the old batch (as ``state``), hand the new ones on."""
    spooled = job.spooled
    await runtime.batch_log.close(dataclasses.replace(job.record, state=state, at=runtime.clock(), failed=failed))
    runtime.ownership.release(spooled.key)
    runtime.spool.remove(spooled.key)
    for new in jobs:
        runtime.ownership.claim(new.record.batch_key, runtime.clock())
        resubmit(new)


def _items(job: BatchJob) -> Iterator[tuple[bytes, bytes]]:
    """(context, line) of each item, in the batch's order, without their newlines."""
    with job.spooled.items_path.open("rb") as contexts, job.spooled.input_path.open("rb") as lines:
        for context, line in zip(contexts, lines, strict=True):
            yield context.rstrip(b"\n"), line.rstrip(b"\n")


async def _new_batch(runtime: Runtime, job: BatchJob, items: list[tuple[bytes, bytes]], requeues: int = 0) -> BatchJob:
    record, spooled = job.record, job.spooled
    key = f"{record.batch_key.split('~', 1)[0]}~{secrets.token_hex(4)}"
    for line, context in items:
        runtime.spool.append(key, line, context)
    size = sum(len(line) + 1 for line, _ in items)
    new = runtime.spool.finish(key, spooled.group, len(items), size)
    share = record.estimated_usd * len(items) / max(record.item_count, 1)
    intent = await runtime.batch_log.intent(new, record.home, share, record.budget_day, replaces=record.batch_key,
                                            requeues=requeues, deadline=record.deadline, sources=record.sources)
    log.info("batch_resubmitted", batch_key=key, replaces=record.batch_key, items=len(items))
    return BatchJob(intent, new, job.generation)
