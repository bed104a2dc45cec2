"""The async-queue agent: items routed to the async, flex (or, from Kafka, realtime) tier, one provider call each.

It reads ``tierline.async`` in its own consumer group. Each item waits for a slot
(``TIERLINE_ASYNC_CONCURRENCY`` calls at once) and for room under its provider and
model's requests- and tokens-per-minute limits (``TIERLINE_ASYNC_LIMITS``), then calls the
provider's synchronous API (its spec's upstream, or its own client: Bedrock's InvokeModel or Converse).
A 429 or an overload pauses that model's calls for the provider's ``retry-after`` and
tries again without counting an attempt; a server error
counts one and is retried with backoff up to ``TIERLINE_MAX_ATTEMPTS``; any other error
is final. The result or final failure event goes out at once, at full price. A flex item
(OpenAI's ``service_tier: "flex"``, ``TIERLINE_FLEX_CONCURRENCY`` calls at once under
``TIERLINE_FLEX_LIMITS``, a longer timeout) is
priced at the batch price; a 429 is waited out while its deadline allows, then the call goes to the
standard tier (``core.flex``), the route saying why. If the
item has a ``callback_url``, the result is POSTed there (``streams.callbacks``) through
``tierline.callbacks``: written there before the result itself, each attempt read back from it
like an item, and a failed one written again as the next attempt, so a worker that dies between
attempts leaves them to the next owner. A callback that never succeeds becomes one final
``callback_failed`` event, the result staying on its topic.

Offsets are committed only past items that are done (reading, the error boundary, commit
pacing and rebalances are the intake's, ``streams.kafka.intake``): a worker that dies re-reads
the rest, and the ledger keeps an item that succeeded from being called again. Arrival to
result is measured against the tier's SLA; overruns are logged (``sla_missed``) and counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any, Callable, NamedTuple

import aiohttp
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from mode import Service

from core.answers import judge_answer
from core.leases import Ticket
from core.callbacks import webhook_id
from core.cost import estimate_tokens
from core.event_checks import check_async
from core.flex import fall_back_reason
from core.throttle import Throttle
from core.spec import ProviderSpec, SyncClient
from core.validation import Rejected
from providers.sync_api import Answer, error_info, retry_after_s, retryable_status
from schemas import AsyncItem, ErrorInfo, FailureEvent, PendingCallback, RunKey
from streams import metrics
from streams.callbacks import Attempt, callback_session, deliver, deliver_once
from streams.alerts import alert_about
from streams.emit import call_estimate, full_price_result, priced, sync_price, too_large
from streams.kafka.fence import Fence
from streams.kafka.intake import Intake, group_consumer
from streams.kafka.publish import Message, RecordTooLarge
from streams.state.crashes import unprocessable
from streams.runtime import Runtime

__all__ = ["AsyncQueue"]

log = structlog.get_logger(__name__)

MAX_WAITING = 2_000  # items read and not yet done before reading pauses
OVERLOADED = (429, 503, 529)  # slow down: no attempt is counted...
MAX_OVERLOADS = 20  # ...this many times an item; then each counts as a failed attempt
BUDGET_WAIT_S = 30.0  # an item the daily budget holds asks again this often...
BUDGET_ALERT_EVERY_S = 600.0  # ...and an alert says so at most this often


class AsyncQueue(Service):
    """``consumer`` makes its Kafka consumer (tests give a fake one); ``clock`` is the wall clock."""

    def __init__(self, runtime: Runtime, clock: Callable[[], float] = time.time,
                 consumer: Callable[[], AIOKafkaConsumer] | None = None) -> None:
        super().__init__()
        self.runtime = runtime
        self.settings = runtime.settings
        self._clock = clock
        self._make_consumer = consumer or (lambda: group_consumer(self.settings, "async"))
        self._intake: Intake | None = None
        self._session: aiohttp.ClientSession | None = None
        self._callbacks: aiohttp.ClientSession | None = None
        # Realtime items from Kafka do not wait behind async ones for a slot.
        self._slots = {tier: asyncio.Semaphore(self.settings.async_concurrency) for tier in ("realtime", "async")}
        self._slots["flex"] = asyncio.Semaphore(self.settings.flex_concurrency)
        flex_s = self.settings.flex_timeout_s
        self._flex_timeout = aiohttp.ClientTimeout(total=flex_s, sock_connect=10, sock_read=flex_s)
        self._throttles: dict[tuple[str, str, bool], Throttle] = {}  # provider, model, flex
        self._jobs: dict[asyncio.Task[None], TopicPartition] = {}
        self._waiting: set[asyncio.Task[None]] = set()  # jobs that have not called the provider yet
        self._in_flight: set[RunKey] = set()  # run keys being served
        self._sync_clients: dict[str, SyncClient] = {}  # made on first use: Bedrock's needs AWS credentials
        self._latest_attempt: dict[str, int] = {}  # webhook id → the latest attempt read of its callback
        self._budget_alerted_at = float("-inf")

    @property
    def ready(self) -> bool:
        """Its consumer group has assigned it partitions (maybe none): ``/health``."""
        return self._intake is not None and self._intake.ready

    def lag(self) -> dict[str, int]:
        return {"async": sum(self._intake.lag().values())} if self._intake is not None else {}

    async def on_start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600)
        self._session = aiohttp.ClientSession(timeout=timeout, trust_env=True)  # HTTPS_PROXY, NO_PROXY
        self._callbacks = callback_session(self.settings)
        topics = self.settings.topics
        self._intake = Intake(self._make_consumer(), [topics.async_tier, topics.callbacks], self, self.runtime.crashes,
                              topics.deadletter, max_record_bytes=self.settings.kafka_max_record_bytes,
                              fence=Fence.of(self.settings))
        await self._intake.start()

    async def on_stop(self) -> None:
        await self.hand_back(set(self._jobs.values()))
        if self._intake is not None:
            await self._intake.stop(self.settings.shutdown_s / 3)
        for session in (self._session, self._callbacks):
            if session is not None:
                await session.close()
        for client in self._sync_clients.values():
            client.close()

    @Service.task
    async def _read(self) -> None:
        assert self._intake is not None
        intake = self._intake
        await self.runtime.crashes.guard(self._read_items(), self.runtime.publisher, lambda: intake.at,
                                         "async_queue")

    async def _read_items(self) -> None:
        while not self.should_stop:
            await self.step()

    async def step(self) -> None:
        """One round: read what came, start serving each item, pause reading while too many wait, commit."""
        intake = self._intake
        assert intake is not None
        records = await intake.read(0.5, 500)
        for messages in records.values():
            metrics.items_in.labels("async").inc(len(messages))
        intake.each(records, self._take)
        intake.hold_back(len(self._jobs) >= MAX_WAITING)
        await intake.commit()

    def _take(self, tp: TopicPartition, message: ConsumerRecord) -> None:
        """One message (the intake runs this inside the per-item error boundary)."""
        assert self._intake is not None
        if tp.topic == self.settings.topics.callbacks:
            self._start_callback(tp, message)
            return
        verdict = check_async(message.value, self.settings.catalogue, self.settings.partitions)
        if isinstance(verdict, Rejected):
            self._intake.dead_letter(message, verdict.reason, verdict.message)
            return
        self._start(verdict, tp, message.offset)

    def _start(self, item: AsyncItem, tp: TopicPartition, offset: int) -> None:
        if self.runtime.ledger.succeeded(item.run_key) or item.run_key in self._in_flight:
            metrics.duplicate_skipped.inc()
            return
        assert self._intake is not None
        self._intake.offsets.hold(tp, offset)
        self._in_flight.add(item.run_key)
        task = asyncio.create_task(self._serve(item, tp, offset), name=f"async-{item.custom_id}")
        self._jobs[task] = tp
        self._waiting.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._jobs.pop(task, None)
        self._waiting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("async_item_crashed", error=repr(task.exception()))

    # -- one item ----------------------------------------------------------------------

    async def _serve(self, item: AsyncItem, tp: TopicPartition, offset: int) -> None:
        try:
            body = await self._call(item)
        except asyncio.CancelledError:
            # Handed back before any provider call: the next owner of the partition reads it again.
            self._in_flight.discard(item.run_key)
            raise
        except Exception as exc:  # noqa: BLE001 - a bug with this item: its final failure, not silence
            log.exception("async_item_crashed", custom_id=item.custom_id)
            body = ErrorInfo(type="unprocessable", message=unprocessable(exc))
            await self._publish_failure(item, body, retryable=False, attempt=1)
        try:
            if isinstance(body, Unqueued):  # a callback too large to queue: delivered here, every attempt
                assert self._callbacks is not None and item.callback_url
                problem = await deliver(self._callbacks, self.settings, item.callback_url, body.body,
                                        item.custom_id, webhook_id(item.run_key))
                if problem is not None:
                    await self._publish_failure(item, problem, retryable=False, attempt=1, measure=False)
        finally:
            self._in_flight.discard(item.run_key)
            assert self._intake is not None
            self._intake.offsets.release(tp, offset)

    async def _call(self, item: AsyncItem) -> bytes | Unqueued | ErrorInfo:
        """Call until there is an answer or a final failure; return the result event's bytes, or the error."""
        settings, spec = self.settings, self.settings.catalogue[item.provider]
        request, model = _body(spec, item), spec.wire.model(item)
        schema = item.answer_schema or spec.wire.answer_schema(item)
        tokens = sum(estimate_tokens(item.params, len(request), item.endpoint))
        throttle = self._throttle(item.provider, model, item.tier == "flex")
        attempt, delay, overloads, refusals = 1, 1.0, 0, 0
        me = asyncio.current_task()
        assert me is not None
        while True:
            ticket = await self._room(item, call_estimate(self.runtime.prices, item.tier, item.provider, model,
                                                          item.params, len(request), item.endpoint))
            sending = False
            try:
                async with self._slots[item.tier]:
                    while (wait := throttle.reserve(tokens)) > 0:
                        await asyncio.sleep(wait)
                    # Not called while the broker has not lately confirmed the partition (cut off from the group,
                    # its next owner may call it too); given up meanwhile, it is cancelled here, uncalled.
                    assert self._intake is not None
                    await self._intake.fence.wait_fresh(lambda: True)
                    self._waiting.discard(me)  # from here on, a rebalance waits for this item
                    sending = True
                    status, payload, retry_after = await self._send(spec, item, request)
            except BaseException:  # cancelled: uncalled, it cost nothing; cut off while calling, at most its estimate
                self.runtime.calls.settle(ticket, ticket.estimate_usd if sending else 0.0)
                raise
            self.runtime.calls.settle(ticket, self._billed(spec, item, status, payload))
            if status < 300:
                try:
                    answer = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    error = ErrorInfo(type="invalid_response", message=f"HTTP {status} with a body that is not JSON")
                    await self._publish_failure(item, error, retryable=False, attempt=attempt)
                    return error
                judged = judge_answer(spec.wire.reading, answer, schema, settings.truncated_fails)
                if judged.error is None:
                    return await self._publish_result(spec, item, answer, attempt, judged.answer)
                again = attempt < settings.max_attempts  # refused (core.answers): billed, and asked again
                await self._publish_failure(item, judged.error, retryable=True, attempt=attempt, final=not again,
                                            billed=answer)
                if not again:
                    return judged.error
                await asyncio.sleep(delay)
                attempt, delay = attempt + 1, min(delay * 2, 60.0)
                continue
            if status == 429 and item.tier == "flex":  # flex has no capacity now: wait, if the deadline allows
                refusals += 1
                reason = fall_back_reason(item.deadline, self._clock(), retry_after or delay, settings.realtime_sla_s,
                                          refusals, settings.flex_max_refusals)
                if reason is not None:
                    log.info("flex_fell_back", custom_id=item.custom_id, model=model, reason=reason)
                    item = dataclasses.replace(item, tier="async", route=[*item.route, reason])
                    request, throttle = _body(spec, item), self._throttle(item.provider, model)
                    continue
            if status in OVERLOADED and overloads < MAX_OVERLOADS:
                overloads += 1
                pause = retry_after or delay
                throttle.back_off(pause)
                log.info("async_backing_off", custom_id=item.custom_id, provider=item.provider, status=status,
                         seconds=round(pause, 3))
                delay = min(delay * 2, 60.0)
                continue
            error = error_info(status, payload)
            if retryable_status(status) and attempt < settings.max_attempts:
                await self._publish_failure(item, error, retryable=True, attempt=attempt, final=False)
                await asyncio.sleep(delay)
                attempt, delay = attempt + 1, min(delay * 2, 60.0)
                continue
            await self._publish_failure(item, error, retryable=retryable_status(status), attempt=attempt)
            return error

    async def _room(self, item: AsyncItem, estimate: float) -> Ticket:
        """The call's estimate taken from the daily budget (``streams.state.call_budget``), waiting while the day's
        budget has no room: the item is held, not failed, and an alert says why."""
        held = False
        while (ticket := await self.runtime.calls.take(estimate)) is None:
            if not held:
                held = True
                metrics.call_held_by_budget.labels(item.tier, item.provider).inc()
                log.info("call_held_by_budget", tier=item.tier, provider=item.provider, custom_id=item.custom_id,
                         estimated_usd=round(estimate, 6), doing="waits for room")
                await self._say_budget_spent(item.provider)
            await asyncio.sleep(BUDGET_WAIT_S)
        return ticket

    async def _say_budget_spent(self, provider: str) -> None:
        """One alert a while, however many items wait."""
        now = self._clock()
        if now - self._budget_alerted_at < BUDGET_ALERT_EVERY_S:
            return
        self._budget_alerted_at = now
        spent = self.runtime.budget.spent()
        await alert_about(self.runtime, "calls", provider, None, "budget_spent",
                          f"the daily budget (${self.settings.daily_budget_usd:,.2f}; ${spent:,.4f} spent or reserved "
                          "on every tier) has no room for the async and flex tiers' calls: they wait, nothing fails, "
                          "until batches settle below their estimates or the UTC day ends")

    def _billed(self, spec: ProviderSpec, item: AsyncItem, status: int, payload: bytes) -> float:
        """What the provider billed for one call: an answer's usage at the tier's price; nothing for an error."""
        if status >= 300:
            return 0.0
        try:
            answer = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return 0.0
        return priced(self.runtime.prices, item.tier, spec, answer, spec.wire.model(item))[2] \
            if isinstance(answer, dict) else 0.0

    async def _send(self, spec: ProviderSpec, item: AsyncItem, request: bytes) -> Answer:
        """One call of the provider's synchronous API; no answer at all is status 599."""
        if spec.sync_client is not None:
            if spec.name not in self._sync_clients:
                self._sync_clients[spec.name] = spec.sync_client(2 * self.settings.async_concurrency)
            return await self._sync_clients[spec.name].send(item)
        assert spec.upstream is not None, f"{spec.name}'s spec names neither its upstream nor its sync client"
        url, headers = spec.upstream(spec.wire.sync_path(item), {}, spec.wire.model(item))
        assert self._session is not None
        timeout = self._flex_timeout if item.tier == "flex" else self._session.timeout  # flex answers slowly
        try:
            async with self._session.post(url, data=request, headers=headers, timeout=timeout) as response:
                return Answer(response.status, await response.read(), retry_after_s(response.headers))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return Answer(599, str(exc).encode())

    def _throttle(self, provider: str, model: str, flex: bool = False) -> Throttle:
        key = (provider, model, flex)
        if key not in self._throttles:
            rpm, tpm = self.settings.async_limit(provider, model, flex)
            self._throttles[key] = Throttle(rpm, tpm, time.monotonic)
        return self._throttles[key]

    # -- events -------------------------------------------------------------------------

    async def _publish_result(self, spec: ProviderSpec, item: AsyncItem, answer: dict[str, Any],
                              attempt: int, parsed: Any = None) -> bytes | Unqueued | ErrorInfo:
        event = full_price_result(self.runtime.prices, item.tier, spec, item.custom_id, answer,
                                  spec.wire.model(item), attempt, item.metadata, item.reprocess, item.route, parsed)
        body = orjson.dumps(event)
        if (problem := too_large(body, item.custom_id, self.settings.kafka_max_record_bytes)) is not None:
            error = ErrorInfo(type="result_too_large", message=problem)
            await self._publish_failure(item, error, retryable=False, attempt=attempt)
            return error
        unqueued = item.callback_url is not None and not await self._queue_callback(item, body)
        ledger = self.runtime.ledger.record(_ledger_key(item), 0, "", [item.run_key])
        await self.runtime.publisher.publish([Message(self.settings.topics.results, item.custom_id, body,
                                                      item.source_partition), ledger])
        self._measure(item)
        return Unqueued(body) if unqueued else body

    async def _publish_failure(self, item: AsyncItem, error: ErrorInfo, retryable: bool, attempt: int,
                               final: bool = True, measure: bool = True,
                               billed: dict[str, Any] | None = None) -> None:
        """One failed attempt; ``billed``: the answer it was refused for, whose cost it carries."""
        event = FailureEvent(custom_id=item.custom_id, provider=item.provider, batch_id=None, error=error,
                             retryable=retryable, attempt=attempt, final=final, metadata=item.metadata,
                             reprocess=item.reprocess, tier=item.tier, route=item.route)
        if billed is not None:
            spec = self.settings.catalogue[item.provider]
            event.model, _, event.cost_usd, _ = sync_price(self.runtime.prices, item.tier, spec, billed,
                                                           spec.wire.model(item))
            metrics.answer_failures.labels(item.tier, item.provider, error.type).inc()
        await self.runtime.publisher.publish([Message(self.settings.topics.failures, item.custom_id, event,
                                                      item.source_partition)])
        if final:
            metrics.failures.labels(item.tier, item.provider).inc()
            if measure:
                self._measure(item)
        else:
            metrics.retries.labels(item.provider).inc()

    def _measure(self, item: AsyncItem) -> None:
        took = self._clock() - item.arrived_at
        metrics.item_seconds.labels(item.tier).observe(took)
        sla = {"async": self.settings.async_sla_s, "flex": self.settings.flex_sla_s}.get(item.tier,
                                                                                      self.settings.realtime_sla_s)
        if took > sla:
            metrics.sla_missed.labels(item.tier).inc()
            log.warning("sla_missed", custom_id=item.custom_id, tier=item.tier, seconds=round(took, 3), sla_s=sla)

    # -- callbacks ----------------------------------------------------------------------

    async def _queue_callback(self, item: AsyncItem, body: bytes) -> bool:
        """Its callback's first attempt on ``tierline.callbacks``, before the result (whose ledger record
        would keep the item from being served again); False if it is too large to go there."""
        assert item.callback_url is not None
        pending = PendingCallback(custom_id=item.custom_id, provider=item.provider, tier=item.tier,
                                  metadata=item.metadata, reprocess=item.reprocess, route=item.route,
                                  source_partition=item.source_partition, url=item.callback_url,
                                  webhook_id=webhook_id(item.run_key), body=orjson.Fragment(body))
        try:
            await self.runtime.publisher.publish([Message(self.settings.topics.callbacks, item.custom_id, pending,
                                                          item.source_partition)])
        except RecordTooLarge:
            return False
        return True

    def _start_callback(self, tp: TopicPartition, message: ConsumerRecord) -> None:
        assert self._intake is not None
        try:
            pending = PendingCallback(**orjson.loads(message.value))
        except (orjson.JSONDecodeError, TypeError) as exc:
            self._intake.dead_letter(message, "invalid_callback", f"not a pending callback: {exc}")
            return
        latest = self._latest_attempt
        latest[pending.webhook_id] = max(latest.get(pending.webhook_id, 0), pending.attempt)
        self._intake.offsets.hold(tp, message.offset)
        task = asyncio.create_task(self._call_back(pending, tp, message.offset), name=f"callback-{pending.custom_id}")
        self._jobs[task] = tp
        self._waiting.add(task)
        task.add_done_callback(self._done)

    async def _call_back(self, pending: PendingCallback, tp: TopicPartition, offset: int) -> None:
        """One attempt, when it is due; a failed one is written back as the next, or ends as ``callback_failed``.

        After a crash, an attempt's record can be read again beside the next one it wrote: a callback that
        has ended (the ledger says so) or whose later attempt was read is skipped, so that it ends once.
        """
        settings, me, ledger = self.settings, asyncio.current_task(), self.runtime.ledger
        ended: RunKey = ("#callback", pending.webhook_id)  # no custom_id starts with "#"
        if (wait := pending.not_before - time.time()) > 0:
            await asyncio.sleep(wait)  # cancelled by a rebalance: the next owner reads it again
        self._waiting.discard(me)
        assert self._callbacks is not None and self._intake is not None
        try:
            if not ledger.succeeded(ended) and self._latest_attempt.get(pending.webhook_id, 0) <= pending.attempt:
                tried = await deliver_once(self._callbacks, settings, pending.url, orjson.dumps(pending.body),
                                           pending.custom_id, pending.webhook_id, pending.attempt)
                if not ledger.succeeded(ended):  # not ended meanwhile by another copy of it
                    await self._after_attempt(pending, tried, ended, tp)
        except Exception:  # noqa: BLE001 - a bug with this callback: said, and not retried for ever
            log.exception("callback_crashed", custom_id=pending.custom_id)
        self._intake.offsets.release(tp, offset)

    async def _after_attempt(self, pending: PendingCallback, tried: Attempt, ended: RunKey,
                             tp: TopicPartition) -> None:
        settings = self.settings
        if not tried.taken and not tried.final and pending.attempt < settings.callback_attempts:
            after = settings.callback_retry_s * 2 ** (pending.attempt - 1)
            later = dataclasses.replace(pending, body=orjson.Fragment(orjson.dumps(pending.body)),
                                        attempt=pending.attempt + 1, not_before=time.time() + after)
            await self.runtime.publisher.publish([Message(settings.topics.callbacks, pending.custom_id, later,
                                                          tp.partition)])
            return
        messages = [self.runtime.ledger.record(orjson.dumps(["callback", pending.webhook_id]).decode(), 0, "",
                                               [ended])]
        self._latest_attempt.pop(pending.webhook_id, None)
        if not tried.taken:
            assert tried.error is not None
            event = FailureEvent(custom_id=pending.custom_id, provider=pending.provider, batch_id=None,
                                 error=tried.error, retryable=False, attempt=1, final=True, metadata=pending.metadata,
                                 reprocess=pending.reprocess, tier=pending.tier, route=pending.route)
            messages.append(Message(settings.topics.failures, pending.custom_id, event, pending.source_partition))
            metrics.failures.labels(pending.tier, pending.provider).inc()
        await self.runtime.publisher.publish(messages)

    # -- the intake's agent -----------------------------------------------------------------

    async def flush(self) -> None:
        """Dead letters go out (results and failures are published as each item ends)."""
        assert self._intake is not None
        if letters := self._intake.take_letters():
            await self.runtime.publisher.publish(letters)

    async def hand_back(self, revoked: set[TopicPartition]) -> None:
        """Calls under way finish (an answer is paid for); items not yet called are left for the next owner."""
        leaving = [task for task, tp in self._jobs.items() if tp in revoked]
        not_called = [task for task in leaving if task in self._waiting]
        for task in not_called:
            task.cancel()
        if leaving:
            await asyncio.wait(leaving, timeout=60)
        log.info("async_partitions_revoked", partitions=len(revoked), items_left=len(not_called),
                 calls_finished=len(leaving) - len(not_called))

    async def take_over(self, assigned: set[TopicPartition]) -> None:
        await self.runtime.ledger.catch_up_to_end()


class Unqueued(NamedTuple):
    """A result whose callback was too large for ``tierline.callbacks``: delivered by the item's own task."""

    body: bytes


def _body(spec: ProviderSpec, item: AsyncItem) -> bytes:
    """The request as the provider's synchronous API takes it: whole (not streamed), as its wire sends it (a
    Gemini body without its model: it is in the URL), with ``service_tier: "flex"`` on the flex tier."""
    params = {**item.params, "stream": False} if "stream" in item.params else item.params
    params = spec.wire.sync_params(params)
    if item.tier == "flex":
        params = {**params, "service_tier": "flex"}
    return orjson.dumps(params)


def _ledger_key(item: AsyncItem) -> str:
    """The ledger record's key: one per item and re-run, unambiguous whatever the custom_id holds."""
    return orjson.dumps([item.tier, item.custom_id, item.reprocess]).decode()
