"""Turn a batch's outcomes into events on the result, failure, retry and ledger topics, in bulk."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterator, Callable, Iterator, Mapping, TypeVar

import orjson
import structlog

from core.cost import Billed, PriceTable, billed_tokens, estimate_tokens
from core.spec import ProviderSpec
from core.outcomes import AnswerRules, Ending, ItemContext, Settled, fail, settle
from core.validation import Request, request_of
from providers.base import ResultFormat, SpooledBatch
from core.retry import CANCELLED_ERROR_TYPES
from schemas import AsyncItem, ErrorInfo, ResultEvent, RetryItem, RunKey, Tier
from streams import metrics
from streams.alerts import alert_about
from streams.crashpoints import crash_point
from streams.kafka.publish import Message
from streams.runtime import Runtime
from streams.state.ledger import ending_bytes
from streams.state.spool import download_outcomes, read_contexts

__all__ = ["too_large", "Emitter", "Tally", "full_price_result", "sync_price", "priced", "call_estimate"]

log = structlog.get_logger(__name__)

CHUNK = 5_000  # events per publish call: still one wait per thousands...
CHUNK_BYTES = 2 << 20  # ...and at most about this much of results held (the list, the producer, the socket)
T = TypeVar("T")
UNRUN_TYPES = CANCELLED_ERROR_TYPES | {"missing_result"}  # what an item of a cancelled batch ends as


@dataclass(slots=True)
class Tally:
    """What became of a batch's items."""

    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0  # from the provider's usage, at batch prices
    models: Counter[str] = field(default_factory=Counter)  # results per model
    model_cost_usd: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    model_realtime_usd: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    diverted: int = 0  # items taken out of a straggling batch to the async tier
    #: Items whose answer was billed but not emitted: each had already succeeded in another batch (or tier).
    billed_twice: int = 0


def full_price_result(prices: PriceTable, tier: Tier, spec: ProviderSpec, custom_id: str, answer: dict[str, Any],
                      model_asked: str = "", attempt: int = 1, metadata: dict[str, Any] | None = None,
                      reprocess: str | None = None, route: list[str] | None = None,
                      parsed: Any = None) -> ResultEvent:
    """A synchronous call's answer (realtime, async or flex tier) as a result event, counted: at full price, or
    flex's at the batch price. ``parsed`` is the answer as its schema checked it (``core.answers``)."""
    model, usage, usd, full = sync_price(prices, tier, spec, answer, model_asked)
    metrics.results.labels(tier, spec.name, model).inc()
    return ResultEvent(custom_id=custom_id, provider=spec.name, batch_id=None, response=answer,
                       usage=usage, attempt=attempt, metadata=metadata or {}, reprocess=reprocess,
                       tier=tier, model=model, cost_usd=usd, realtime_usd=full, route=route, answer=parsed)


def sync_price(prices: PriceTable, tier: Tier, spec: ProviderSpec, answer: dict[str, Any],
               model_asked: str = "") -> tuple[str, dict[str, Any] | None, float, float]:
    """What a synchronous call's answer cost, counted in the metrics: ``priced``'s figures."""
    model, usage, usd, full = priced(prices, tier, spec, answer, model_asked)
    metrics.cost_usd.labels(tier, spec.name, model).inc(usd)
    metrics.realtime_usd.labels(tier, spec.name, model).inc(full)
    return model, usage, usd, full


def priced(prices: PriceTable, tier: Tier, spec: ProviderSpec, answer: dict[str, Any],
           model_asked: str = "") -> tuple[str, dict[str, Any] | None, float, float]:
    """The model a synchronous call's answer is billed as, its usage, and its cost at the tier's price and at full
    price."""
    # A call billed by the model asked (Bedrock's model id) is billed so whatever name the answer gives it.
    named = answer.get("model")
    model = model_asked if spec.bills_job_model or not isinstance(named, str) or not named else named
    usage = answer.get("usage") or answer.get("usageMetadata")  # Gemini's name for it
    tokens = billed_tokens(usage)
    full = prices.realtime_usd(spec.name, model, tokens)
    usd = prices.batch_usd(spec.name, model, tokens) if tier == "flex" else full  # flex is billed at batch prices
    return model, usage, usd, full


def call_estimate(prices: PriceTable, tier: Tier, provider: str, model: str, params: dict[str, Any],
                  request_bytes: int, endpoint: str | None) -> float:
    """What a synchronous call may cost at most, as a batch's items are estimated: flex at batch prices."""
    tokens = Billed(*estimate_tokens(params, request_bytes, endpoint))
    return prices.batch_usd(provider, model, tokens) if tier == "flex" else prices.realtime_usd(provider, model, tokens)


def too_large(data: bytes, key: str, max_bytes: int) -> str | None:
    """Why a result event cannot go to Kafka whole, if it cannot: failing the item says so, where sending it
    would fail the batch's whole settle, again and again."""
    size = len(data) + len(key.encode())
    if size <= max_bytes:
        return None
    return (f"the provider's answer takes {size:,} bytes as a result event, more than the {max_bytes:,} of a "
            "Kafka record (TIERLINE_KAFKA_MAX_RECORD_BYTES): it was paid for but cannot be delivered. Raise the "
            "limit (and the topics' max.message.bytes), or ask for a shorter answer (max_tokens)")


class Emitter:
    """Publishes what a batch's items came to."""

    def __init__(self, runtime: Runtime, clock: Callable[[], float] | None = None) -> None:
        self.runtime = runtime
        self._clock = clock or runtime.clock
        topics = runtime.settings.topics
        self._results, self._failures, self._retry = topics.results, topics.failures, topics.retry

    async def settle_batch(self, spooled: SpooledBatch, batch_id: str, lines: AsyncIterator[list[bytes]],
                           result_format: ResultFormat, final_kinds: frozenset[str] = frozenset(),
                           unrun: ErrorInfo | None = None, divert: str | None = None) -> Tally:
        """Emit one event per item of an ended batch; items the provider left out are retried.

        ``lines`` are the batch's result lines, in runs, read as its provider's ``result_format`` says. They are
        downloaded whole first: a ``ProviderError`` while reading them emits nothing.
        Errors of ``final_kinds`` are not retried (the items of a batch cancelled with --fail).
        ``unrun`` is what an item left out means, when the batch's status says (stopped, timed out).
        ``divert``: the batch was cancelled as a straggler, and why: its unrun items with a deadline go
        to the async tier (``tierline.async``) with that reason, the others are retried in the batch tier.
        """
        downloaded = await download_outcomes(lines, result_format, spooled)
        run = _Run(self, spooled, batch_id, divert)
        missing = unrun or ErrorInfo(type="missing_result",
                                     message="the provider ended the batch without a result for this item")
        strangers: list[str] = []
        for part, contexts_file in enumerate(downloaded.context_files()):
            contexts = {ctx.custom_id: ctx for ctx in read_contexts(contexts_file)}
            for outcome in downloaded.outcomes(part):
                ctx = contexts.pop(outcome.custom_id, None)
                if ctx is None:
                    log.warning("unexpected_result", batch_id=batch_id, custom_id=outcome.custom_id)
                    strangers.append(outcome.custom_id)
                    continue
                if outcome.error is not None and outcome.error.type in final_kinds:
                    outcome = replace(outcome, retryable=False)
                await run.add(settle(outcome, ctx, spooled.group.provider, batch_id, run.policy, self._clock(),
                                     run.answers), ctx)
            for ctx in contexts.values():
                await run.fail(ctx, missing, missing.type not in final_kinds)
        tally = await run.finish()
        if run.billed_twice:
            log.warning("billed_twice", batch_id=batch_id, batch_key=spooled.key, items=len(run.billed_twice),
                        first=run.billed_twice[0])
            await alert_about(self.runtime, spooled.key, spooled.group.provider, batch_id, "billed_twice",
                              f"{len(run.billed_twice)} item(s) of this batch had already succeeded in another "
                              f"batch (the first: {run.billed_twice[0][:100]!r}): billed again, their results were "
                              "not emitted twice")
        if strangers:  # a second result for an item, or one for an item never sent: ignored, but said
            await alert_about(self.runtime, spooled.key, spooled.group.provider, batch_id, "unexpected_results",
                              f"{len(strangers)} result line(s) for custom_ids not in this batch, or seen twice, "
                              f"were ignored (the first: {strangers[0][:100]!r})")
        return tally

    async def fail_batch(self, spooled: SpooledBatch, batch_id: str | None, error: ErrorInfo,
                         retryable: bool) -> Tally:
        """The whole batch failed: one failure event per item, retried when the cause allows."""
        run = _Run(self, spooled, batch_id)
        for ctx in read_contexts(spooled.items_path):
            await run.fail(ctx, error, retryable)
        return await run.finish()


    async def divert_batch(self, spooled: SpooledBatch, reason: str) -> Tally:
        """A batch that will not be submitted: each of its items to the async tier, its route saying why."""
        run = _Run(self, spooled, None, divert=reason)
        for ctx in read_contexts(spooled.items_path):
            run.diverted[ctx.custom_id] = ctx
            run.tally.diverted += 1
        return await run.finish()

    async def fail_items(self, spooled: SpooledBatch, batch_id: str | None,
                         failures: list[tuple[ItemContext, ErrorInfo]]) -> Tally:
        """Some items of a batch failed for good, each for its own reason (a provider refusing them)."""
        run = _Run(self, spooled, batch_id)
        for ctx, error in failures:
            await run.fail(ctx, error, retryable=False)
        return await run.finish()


class _Run:
    """Accumulates one batch's messages and publishes them in chunks."""

    def __init__(self, emitter: Emitter, spooled: SpooledBatch, batch_id: str | None,
                 divert: str | None = None) -> None:
        self.e, self.spooled, self.batch_id, self.divert = emitter, spooled, batch_id, divert
        self.spec = emitter.runtime.settings.catalogue[spooled.group.provider]
        self.wire = self.spec.wire
        self.policy = emitter.runtime.settings.retry_policy
        self.answers = AnswerRules(self.wire.reading, emitter.runtime.settings.truncated_fails)
        self.diverted: dict[str, ItemContext] = {}
        self.tally = Tally()
        self.messages: list[Message] = []
        self.message_bytes = 0  # of the results among them
        self.succeeded: list[RunKey] = []  # of the chunk being built, for its ledger record
        self.ledger_bytes = 0  # about what they (and ``failed``) take in it: a ledger record must fit a Kafka record
        self.chunks = 0
        self.retry: dict[str, tuple[ItemContext, float, ErrorInfo]] = {}
        #: Of the chunk being built, each with the attempt that ended: they leave the in-flight set once it is out.
        self.left: list[tuple[str, int]] = []
        self.failed: list[Ending] = []  # of the chunk being built: attempts that ended in a final failure
        self.billed_twice: list[str] = []  # custom_ids whose result was emitted under another batch before

    async def add(self, settled: Settled, ctx: ItemContext) -> None:
        e, partition, key = self.e, ctx.source_partition, ctx.custom_id
        if (result := settled.result) is not None and not isinstance(result.response, dict):
            result, settled = None, self._unrecordable(ctx, "the provider's answer is not a JSON object")
        if result is not None:
            result.model, tokens, result.cost_usd, result.realtime_usd = self._priced(result.response, result.usage)
            model = result.model
            try:
                # A copy of its size: orjson (3.12 on) leaves each result in a buffer of at least 4 KB, and a
                # chunk holds thousands of them.
                data = bytes(memoryview(orjson.dumps(result)))
            except TypeError as exc:  # an answer nested past what JSON writers take
                result, settled = None, self._unrecordable(ctx, f"the provider's answer cannot be recorded: {exc}")
            else:
                if (problem := too_large(data, key, e.runtime.settings.kafka_max_record_bytes)) is not None:
                    result, settled = None, self._unrecordable(ctx, problem, "result_too_large")
        if result is not None and (first := e.runtime.ledger.succeeded_in(ctx.run_key)) is not None and \
                first != (self.batch_id or ""):
            # Its result went out under another batch (a resumed zombie's, a twin retry's): the answer was billed
            # again, but the item has one result, and the report counts it once.
            self.tally.billed_twice += 1
            self.tally.cost_usd += result.cost_usd
            self.billed_twice.append(key)
            self.left.append((key, ctx.attempt))
        elif result is not None:
            self.tally.succeeded += 1
            self._bill(model, tokens, result.cost_usd, result.realtime_usd)
            self.tally.models[model] += 1
            self.messages.append(Message(e._results, key, data, partition))
            self.message_bytes += len(data)
            self.succeeded.append(ctx.run_key)
            self.ledger_bytes += len(key) + 16
            self.left.append((key, ctx.attempt))
        elif settled.failure is not None and self._diverts(settled.failure.error.type, ctx):
            self.diverted[key] = ctx
            self.tally.diverted += 1
        elif settled.failure is not None:
            if settled.billed is not None:  # an answer refused (core.answers): billed all the same
                failure = settled.failure
                failure.model, tokens, failure.cost_usd, realtime = self._priced(*settled.billed)
                self._bill(failure.model, tokens, failure.cost_usd, realtime)
                metrics.answer_failures.labels("batch", failure.provider, failure.error.type).inc()
            self.messages.append(Message(e._failures, key, settled.failure, partition))
            if settled.retry_at is not None:
                self.tally.retried += 1
                self.retry[key] = (ctx, settled.retry_at, settled.failure.error)
            else:
                self.tally.failed += 1
                self.left.append((key, ctx.attempt))
                for ending in ctx.endings():
                    self.failed.append(ending)
                    self.ledger_bytes += ending_bytes(ending)
            log.info("item_failed", custom_id=key, batch_id=self.batch_id, error=settled.failure.error.type,
                     attempt=ctx.attempt, final=settled.failure.final)
        if len(self.messages) >= CHUNK or self.message_bytes >= CHUNK_BYTES or \
                self.ledger_bytes > self.e.runtime.settings.kafka_max_record_bytes // 2:
            await self._publish()

    def _priced(self, response: dict[str, Any], usage: dict[str, Any] | None) -> tuple[str, Billed, float, float]:
        """The model an answer is billed as, its tokens, and what they cost at batch and at full price."""
        # A job billed by its model (Bedrock's modelId) is billed so whatever name the answer gives it.
        named = response.get("model")
        model = self.spooled.group.model if self.spec.bills_job_model or not isinstance(named, str) or not named \
            else named
        prices, tokens = self.e.runtime.prices, billed_tokens(usage)
        price = prices.price(self.spooled.group.provider, model or "")
        return model or "", tokens, price.usd(tokens, prices.batch_discount), price.usd(tokens)

    def _bill(self, model: str, tokens: Billed, cost_usd: float, realtime_usd: float) -> None:
        tally = self.tally
        tally.input_tokens += tokens.read
        tally.output_tokens += tokens.output
        tally.cost_usd += cost_usd
        tally.model_cost_usd[model] += cost_usd
        tally.model_realtime_usd[model] += realtime_usd

    async def fail(self, ctx: ItemContext, error: ErrorInfo, retryable: bool) -> None:
        """The item failed for ``error``: retried if ``retryable`` and attempts remain."""
        await self.add(fail(ctx, self.spooled.group.provider, self.batch_id, error, retryable, self.policy,
                            self.e._clock()), ctx)

    def _diverts(self, error_type: str, ctx: ItemContext) -> bool:
        """An item not run because its straggling batch was cancelled, and due by a deadline: async tier."""
        return self.divert is not None and ctx.deadline is not None and error_type in UNRUN_TYPES

    def _unrecordable(self, ctx: ItemContext, why: str, kind: str = "invalid_response") -> Settled:
        """An answer that cannot become a result event: the item's final failure, saying why."""
        return fail(ctx, self.spooled.group.provider, self.batch_id, ErrorInfo(type=kind, message=why), False,
                    self.policy, self.e._clock())

    async def finish(self) -> Tally:
        await self._publish()
        # Each went on as another record: the attempts read from these are over (published with them, so that
        # a crash between the two leaves the attempt to run again rather than the item lost).
        if self.retry:
            await self.e.runtime.publisher.publish([*self._retry_messages(), *self._ended("retried", [
                ending for ctx, _, _ in self.retry.values() for ending in ctx.endings()])])
        if self.diverted:
            await self.e.runtime.publisher.publish([*self._diverted_messages(), *self._ended("diverted", [
                ending for ctx in self.diverted.values() for ending in ctx.endings()])])
            log.warning("items_diverted", batch_id=self.batch_id, items=len(self.diverted), reason=self.divert)
        self.e.runtime.items_settled([(key, ctx.attempt) for key, (ctx, _, _) in self.retry.items()]
                                     + [(key, ctx.attempt) for key, ctx in self.diverted.items()])
        self._count()
        return self.tally

    def _count(self) -> None:
        tally, provider = self.tally, self.spooled.group.provider
        for model, n in tally.models.items():
            metrics.results.labels("batch", provider, model).inc(n)
            metrics.cost_usd.labels("batch", provider, model).inc(tally.model_cost_usd[model])
            metrics.realtime_usd.labels("batch", provider, model).inc(tally.model_realtime_usd[model])
        metrics.failures.labels("batch", provider).inc(tally.failed)
        metrics.retries.labels(provider).inc(tally.retried)

    async def _publish(self) -> None:
        """One chunk: its events and the ledger record of its successes, acknowledged together."""
        messages, self.messages, self.message_bytes = self.messages, [], 0
        if self.succeeded or self.failed:
            ledger = self.e.runtime.ledger
            messages.append(ledger.record(self.spooled.key, self.chunks, self.batch_id or "", self.succeeded,
                                          self.failed))
            self.succeeded, self.ledger_bytes, self.failed = [], 0, []
        self.chunks += 1
        await self.e.runtime.publisher.publish(messages)
        # Each chunk's items leave as it goes, not all at the batch's end: a large batch's ids are not held
        # twice over, by the in-flight set and by the ledger, while it settles.
        left, self.left = self.left, []
        self.e.runtime.items_settled(left)
        crash_point("mid_emit")

    def _ended(self, how: str, placings: list[Ending]) -> Iterator[Message]:
        """The ledger records of attempts that went on as other records (``how``: retried, diverted), as many as
        it takes for each to fit a Kafka record."""
        return self.e.runtime.ledger.endings(f"{self.spooled.key}~{how}", self.batch_id or "", placings,
                                             self.e.runtime.settings.kafka_max_record_bytes // 2)

    def _diverted_messages(self) -> Iterator[Message]:
        """Each diverted item as the async-queue agent takes it, its request read back from the spool."""
        assert self.divert is not None
        now, topic = self.e._clock(), self.e.runtime.settings.topics.async_tier
        for ctx, (custom_id, params, endpoint) in self._requests(self.diverted):
            item = AsyncItem(custom_id=custom_id, provider=self.spooled.group.provider, params=params,
                             endpoint=endpoint, metadata=ctx.metadata, reprocess=ctx.reprocess, tier="async",
                             route=[*(ctx.route or []), self.divert], arrived_at=now,
                             source_partition=ctx.source_partition, deadline=ctx.deadline,
                             answer_schema=ctx.answer_schema, **self.wire.job_fields(self.spooled.group))
            yield Message(topic, custom_id, item, ctx.source_partition)

    def _retry_messages(self) -> Iterator[Message]:
        """Retry events carry the original request, read back from the spooled input."""
        group = self.spooled.group
        for (ctx, not_before, error), (_, params, endpoint) in self._requests(self.retry):
            item = RetryItem(custom_id=ctx.custom_id, provider=group.provider, params=params, endpoint=endpoint,
                             metadata=ctx.metadata, attempt=ctx.attempt + 1, not_before=not_before,
                             source_partition=ctx.source_partition, previous_error=error, reprocess=ctx.reprocess,
                             route=ctx.route, deadline=ctx.deadline, answer_schema=ctx.answer_schema,
                             **self.wire.job_fields(group))
            yield Message(self.e._retry, ctx.custom_id, item, ctx.source_partition)

    def _requests(self, wanted: Mapping[str, T]) -> Iterator[tuple[T, Request]]:
        """The original request of each item in ``wanted`` (by custom_id), read back from the spooled input."""
        with self.spooled.input_path.open("rb") as lines:
            for raw in lines:
                request = request_of(orjson.loads(raw))
                if (entry := wanted.get(request.custom_id)) is not None:
                    yield entry, request
