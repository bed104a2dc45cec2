"""The realtime tier: the worker's HTTP endpoint in front of each provider's synchronous API.

``POST /realtime/anthropic/v1/messages``, ``/realtime/openai/v1/chat/completions`` and
``/realtime/openai/v1/embeddings`` take the provider's own request body and answer with the
provider's own response: whole, or streamed byte for byte as its server-sent events arrive.
An official SDK is a client as it is: ``base_url=http://WORKER:6066/realtime/anthropic`` (or
``.../realtime/openai/v1``). The worker calls the provider with its own credentials (the
SDKs' variables), over kept-alive connections.

Each call is recorded afterwards, off the client's path: a result event (``tier:
"realtime"``, at full price) or a failure event, published in bulk with the others. A client
that hangs up in the middle of a stream gets a ``client_disconnected`` failure event.
Optional request headers: ``tierline-custom-id`` (default: a new ``rt-`` id) and
``tierline-metadata`` (a JSON object copied onto the event). A body that is not a JSON
object, or a header that breaks these rules, is answered 400 in the provider's own error
shape before anything is called or recorded.
"""

from __future__ import annotations

import asyncio
import hmac
import uuid
from typing import Any, Awaitable, Callable

import aiohttp
import orjson
import structlog
from aiohttp import web
from mode import Service

from core.answers import judge_answer
from core.leases import Ticket
from core.validation import MAX_CUSTOM_ID_CHARS, Rejected, parse
from core.spec import ProviderSpec
from providers.streamed import StreamFailed
from providers.sync_api import error_info, retryable_status
from schemas import ErrorInfo, FailureEvent, WorkItem
from streams import metrics
from streams.emit import call_estimate, full_price_result, sync_price, too_large
from streams.kafka.publish import Message
from streams.runtime import Runtime

__all__ = ["RealtimeTier"]

log = structlog.get_logger(__name__)

FLUSH_S = 0.02  # events wait at most this long to be published together
CLIENT_GONE = 499  # the client closed the connection before the answer was whole (nginx's code for it)
# Response headers worth passing back: ids for support requests, and rate-limit advice.
_PASSED_BACK = ("content-type", "request-id", "x-request-id", "retry-after", "retry-after-ms")
_PASSED_PREFIXES = ("anthropic-ratelimit-", "x-ratelimit-", "openai-")


class RealtimeTier(Service):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self._session: aiohttp.ClientSession | None = None
        self._outbox: list[Message] = []
        self._pending = asyncio.Event()  # set when the outbox gets its first event: no timer runs while idle

    async def on_start(self) -> None:
        settings = self.runtime.settings
        if not settings.realtime_keys and not settings.realtime_open_to_all:
            log.warning("realtime_endpoint_off", web_host=settings.web_host,
                        fix="set TIERLINE_REALTIME_KEYS (the keys clients may use), or TIERLINE_WEB_HOST=127.0.0.1")
        # No total timeout: a long answer streams for as long as it takes; connecting is bounded.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0),
                                              auto_decompress=True, trust_env=True)  # HTTPS_PROXY, NO_PROXY

    async def on_stop(self) -> None:
        await self._flush()
        if self._session is not None:
            await self._session.close()

    @Service.task
    async def _publisher(self) -> None:
        while not self.should_stop:
            await self._pending.wait()
            await asyncio.sleep(FLUSH_S)  # what else comes meanwhile goes out with it
            self._pending.clear()
            await self._flush()

    async def _flush(self) -> None:
        if self._outbox:
            outbox, self._outbox = self._outbox, []
            await self.runtime.publisher.publish(outbox)

    def routes(self) -> dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        """The worker's page of each provider path, and its handler."""
        def handler(spec: ProviderSpec, path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
            return lambda request: self.forward(request, spec, path)
        routes = self.runtime.settings.catalogue.realtime_routes()
        return {page: handler(spec, path) for page, (spec, path) in routes.items()}

    async def forward(self, request: web.Request, spec: ProviderSpec, path: str) -> web.StreamResponse:
        assert self._session is not None, "RealtimeTier not started"
        provider = spec.name
        if (refusal := self._refusal(request, spec)) is not None:
            return refusal
        try:
            body = await asyncio.wait_for(request.read(), self.runtime.settings.web_read_timeout_s)
        except asyncio.TimeoutError:  # a client sending slowly, or not at all, holds no connection for long
            return _provider_error(spec, 408, f"the request body did not arrive within "
                                   f"{self.runtime.settings.web_read_timeout_s:g} s", "timeout_error")
        checked = _checked(body, request.headers)
        if isinstance(checked, str):
            return _provider_error(spec, 400, checked, "invalid_request_error")
        custom_id, metadata, doc = checked
        assert spec.realtime is not None and spec.upstream is not None  # routed here only if so
        if (ticket := await self._room(spec, path, doc, len(body))) is None:
            return _provider_error(spec, 429, "tierline's daily budget (TIERLINE_DAILY_BUDGET_USD) is spent, on "
                                   "every tier together: try again after 00:00 UTC", "rate_limit_error")
        if b'"stream"' in body:
            body = spec.realtime.with_usage(path, body, doc)
        url, headers = spec.upstream(path, request.headers, "")
        loop = asyncio.get_running_loop()
        try:
            answer = await self._session.post(url, data=body, headers=headers)
        except aiohttp.ClientError as exc:
            self.runtime.calls.settle(ticket, 0.0)
            loop.call_soon(self._record_failure, provider, custom_id, metadata, 502, str(exc).encode())
            return _provider_error(spec, 502, f"the provider could not be reached: {exc}")
        async with answer:
            passed = {k: v for k, v in answer.headers.items()
                      if k.lower() in _PASSED_BACK or k.lower().startswith(_PASSED_PREFIXES)}
            if answer.content_type != "text/event-stream":
                payload = await answer.read()
                loop.call_soon(self._record, ticket, spec, path, answer.status, payload, False, custom_id, metadata,
                               doc)
                return web.Response(body=payload, status=answer.status, headers=passed)
            response = web.StreamResponse(status=answer.status, headers=passed)
            await response.prepare(request)
            copy = []
            try:
                async for chunk in answer.content.iter_any():
                    copy.append(chunk)
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:  # the client went away: leaving stops the provider's stream too
                self.runtime.calls.settle(ticket, ticket.estimate_usd)  # billed for what it made: at most this
                loop.call_soon(self._record_failure, provider, custom_id, metadata, CLIENT_GONE, b"",
                               sum(map(len, copy)))
                return response
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # the provider's stream broke off
                self.runtime.calls.settle(ticket, ticket.estimate_usd)
                loop.call_soon(self._record_failure, provider, custom_id, metadata, 502,
                               orjson.dumps({"error": {"type": "stream_broken", "message": f"the provider's stream "
                                                       f"broke off after {sum(map(len, copy))} bytes: {exc}"}}))
                return response
        loop.call_soon(self._record, ticket, spec, path, answer.status, b"".join(copy), True, custom_id, metadata,
                       doc)
        return response

    async def _room(self, spec: ProviderSpec, path: str, params: dict[str, Any], size: int) -> Ticket | None:
        """The call's estimate taken from the daily budget (``streams.state.call_budget``), if there is room."""
        model = str(params.get("model") or path.rpartition("/models/")[2].partition(":")[0])  # Gemini's is in the path
        estimate = call_estimate(self.runtime.prices, "realtime", spec.name, model, params, size, path)
        ticket = await self.runtime.calls.take(estimate)
        if ticket is None:
            metrics.call_held_by_budget.labels("realtime", spec.name).inc()
            log.info("call_held_by_budget", tier="realtime", provider=spec.name, estimated_usd=round(estimate, 6),
                     doing="answered 429")
        return ticket

    def _refusal(self, request: web.Request, spec: ProviderSpec) -> web.Response | None:
        """A caller without one of ``TIERLINE_REALTIME_KEYS``, as the provider would refuse a bad key; or the
        endpoint off, when it listens beyond this machine with no keys at all. Recorded nowhere."""
        settings = self.runtime.settings
        if settings.realtime_open_to_all:
            return None
        if not settings.realtime_keys:
            return _provider_error(spec, 503, f"the realtime endpoint is off: it listens on {settings.web_host}, "
                                   "beyond this machine, and TIERLINE_REALTIME_KEYS is not set", "api_error")
        if not any(hmac.compare_digest(offered.encode(), key.encode())
                   for offered in _offered_keys(request.headers) for key in settings.realtime_keys):
            metrics.realtime_refused.inc()
            log.info("realtime_refused", provider=spec.name, peer=request.remote, keyed=bool(_offered_keys(
                request.headers)))
            assert spec.realtime is not None
            return web.Response(body=spec.realtime.unauthorized(), status=401, content_type="application/json")
        return None

    # -- recording, after the answer has gone -------------------------------------------

    def _record(self, ticket: Ticket, spec: ProviderSpec, path: str, status: int, payload: bytes, streamed: bool,
                custom_id: str, metadata: dict[str, Any], params: dict[str, Any]) -> None:
        """The call recorded, and its cost given back to the budget its estimate was taken from."""
        self.runtime.calls.settle(ticket, self._recorded(spec, path, status, payload, streamed, custom_id, metadata,
                                                         params))

    def _recorded(self, spec: ProviderSpec, path: str, status: int, payload: bytes, streamed: bool, custom_id: str,
                  metadata: dict[str, Any], params: dict[str, Any]) -> float:
        """The answer the client was given, on the result or the failure topic: an answer that is not what its
        request asked for (``core.answers``) is a final failure, the client having had it as it was. Returns what
        the provider billed for it."""
        provider = spec.name
        if status >= 400:
            self._record_failure(provider, custom_id, metadata, status, payload)
            return 0.0
        try:
            if not streamed:
                answer = orjson.loads(payload)
            else:
                assert spec.realtime is not None
                answer = spec.realtime.whole(payload)
        except StreamFailed as failed:  # an overload mid-stream, say: the client saw the error event too
            self._record_failure(provider, custom_id, metadata, 502, orjson.dumps({"error": failed.error}))
            return 0.0
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError, RuntimeError) as exc:
            log.warning("realtime_unreadable", custom_id=custom_id, provider=provider, path=path, error=str(exc))
            self._record_failure(provider, custom_id, metadata, 502, orjson.dumps(
                {"error": {"type": "invalid_response", "message": f"the provider's answer cannot be read: {exc}"}}))
            return 0.0
        if answer is None:  # a stream that ended before its answer began
            self._record_failure(provider, custom_id, metadata, 502, orjson.dumps(
                {"error": {"type": "invalid_response", "message": "the provider's stream ended before its answer "
                           "began"}}))
            return 0.0
        if not isinstance(answer, dict):
            self._record_failure(provider, custom_id, metadata, 502, orjson.dumps(
                {"error": {"type": "invalid_response", "message": "the provider answered 2xx with JSON that is "
                           f"not an object ({type(answer).__name__})"}}))
            return 0.0
        schema = spec.wire.answer_schema(WorkItem(custom_id=custom_id, provider=provider, params=params, endpoint=path))
        judged = judge_answer(spec.wire.reading, answer, schema, self.runtime.settings.truncated_fails)
        if judged.error is not None:
            return self._record_refused(spec, custom_id, metadata, answer, judged.error)
        event = full_price_result(self.runtime.prices, "realtime", spec, custom_id, answer, metadata=metadata,
                                  parsed=judged.answer)
        try:
            data = orjson.dumps(event)
        except TypeError as exc:  # an answer nested past what JSON writers take
            log.warning("realtime_unrecordable", custom_id=custom_id, provider=provider, error=str(exc))
            self._record_failure(provider, custom_id, metadata, 502, orjson.dumps(
                {"error": {"type": "invalid_response", "message": f"the provider's answer cannot be recorded: {exc}"}}))
            return event.cost_usd
        if (problem := too_large(data, custom_id, self.runtime.settings.kafka_max_record_bytes)) is not None:
            log.warning("realtime_unrecordable", custom_id=custom_id, provider=provider, error=problem)
            self._record_failure(provider, custom_id, metadata, 502, orjson.dumps(
                {"error": {"type": "result_too_large", "message": problem}}))
            return event.cost_usd
        metrics.items_routed.labels("realtime", provider).inc()
        self._queue(Message(self.runtime.settings.topics.results, custom_id, data))
        return event.cost_usd

    def _queue(self, message: Message) -> None:
        self._outbox.append(message)
        self._pending.set()

    def _record_refused(self, spec: ProviderSpec, custom_id: str, metadata: dict[str, Any], answer: dict[str, Any],
                        error: ErrorInfo) -> float:
        model, _, usd, _ = sync_price(self.runtime.prices, "realtime", spec, answer)
        event = FailureEvent(custom_id=custom_id, provider=spec.name, batch_id=None, error=error, retryable=False,
                             attempt=1, final=True, metadata=metadata, reprocess=None, tier="realtime", model=model,
                             cost_usd=usd)
        metrics.items_routed.labels("realtime", spec.name).inc()
        metrics.failures.labels("realtime", spec.name).inc()
        metrics.answer_failures.labels("realtime", spec.name, error.type).inc()
        self._queue(Message(self.runtime.settings.topics.failures, custom_id, event))
        return usd

    def _record_failure(self, provider: str, custom_id: str, metadata: dict[str, Any], status: int,
                        payload: bytes, streamed_bytes: int = 0) -> None:
        if status == CLIENT_GONE:
            error = ErrorInfo(type="client_disconnected",
                              message=f"the client went away after {streamed_bytes} bytes of the streamed answer; "
                                      "the provider's stream was closed, and it bills what it generated")
            retryable = False
        else:
            error, retryable = error_info(status, payload), retryable_status(status)
        event = FailureEvent(custom_id=custom_id, provider=provider, batch_id=None, error=error, retryable=retryable,
                             attempt=1, final=True, metadata=metadata, reprocess=None, tier="realtime")
        metrics.items_routed.labels("realtime", provider).inc()
        metrics.failures.labels("realtime", provider).inc()
        self._queue(Message(self.runtime.settings.topics.failures, custom_id, event))


def _checked(body: bytes, headers: Any) -> tuple[str, dict[str, Any], dict[str, Any]] | str:
    """(custom_id, metadata, parsed body) of a request, or what is wrong with it, for a 400."""
    doc = parse(body)
    if isinstance(doc, Rejected):
        return f"the request body is not acceptable: {doc.message}"
    if not isinstance(doc, dict):
        return f"the request body must be a JSON object, got {type(doc).__name__}"
    custom_id = headers.get("tierline-custom-id") or f"rt-{uuid.uuid4().hex}"
    try:
        custom_id.encode()  # aiohttp keeps bytes that are not UTF-8 as lone surrogates
    except UnicodeEncodeError:
        return "the tierline-custom-id header must be UTF-8 text"
    if len(custom_id) > MAX_CUSTOM_ID_CHARS or not custom_id.isprintable():
        return f"the tierline-custom-id header must be at most {MAX_CUSTOM_ID_CHARS} printable characters"
    metadata: Any = {}
    if header := headers.get("tierline-metadata"):
        try:
            header.encode()
        except UnicodeEncodeError:
            return "the tierline-metadata header must be UTF-8 text"
        metadata = parse(header.encode())
        if isinstance(metadata, Rejected) or not isinstance(metadata, dict):
            why = metadata.message if isinstance(metadata, Rejected) else f"got {type(metadata).__name__}"
            return f"the tierline-metadata header must be a JSON object: {why}"
    return custom_id, metadata, doc


def _offered_keys(headers: Any) -> list[str]:
    """The key a client's SDK sends: Anthropic's ``x-api-key`` (or a bearer token), OpenAI's bearer token."""
    offered = [headers.get("x-api-key", "")]
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        offered.append(token.strip())
    return [key for key in offered if key]


def _provider_error(spec: ProviderSpec, status: int, message: str, kind: str = "") -> web.Response:
    """An error as the provider writes it, so that the client's SDK reads it."""
    assert spec.realtime is not None
    return web.Response(body=spec.realtime.error(status, message, kind), status=status,
                        content_type="application/json")

