"""The providers' synchronous endpoints: Anthropic ``/v1/messages``, OpenAI ``/v1/chat/completions`` and
``/v1/embeddings``, answered whole or streamed in each provider's own server-sent events.

A streamed answer waits ``first_token_s`` before its first token and ``token_s`` between
tokens. The same ``#emulate:`` markers as in batches apply: ``errored`` is a 400, ``flaky``
a retryable server error on the first attempt of the same request body. With a
``requests_per_minute`` limit, requests over it get a 429 in the provider's shape with
``retry-after``, which the SDKs honour. A chat completion with ``service_tier: "flex"`` answers
after ``Flex.latency_s`` more, and is refused (429, resource unavailable) at ``Flex.unavailable_rate``
or always when it carries ``#emulate:flex-busy``; its answer says ``service_tier: "flex"``.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import orjson
from aiohttp import web

from emulator.anthropic_api import _message
from emulator.anthropic_api import error as anthropic_error
from emulator.behaviour import Behaviour, Outcome
from emulator.openai_api import _response_body
from emulator.openai_api import error as openai_error

__all__ = ["Flex", "Pace", "RateLimit", "RealtimeEmulator"]


@dataclass(frozen=True, slots=True)
class Flex:
    """How OpenAI's flex processing behaves: slower, and short of capacity now and then."""

    latency_s: float = 0.0
    unavailable_rate: float = 0.0

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast a streamed answer comes: before the first token, then between tokens."""

    first_token_s: float = 0.0
    token_s: float = 0.0


class RateLimit:
    """``per_minute`` requests, replenished continuously as the providers do, a second's worth (at
    least one) at a time; 0 for no limit. Pure: the clock is given."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._at = clock()

    def admit(self) -> float | None:
        """None if the request may go now, else the seconds until one may."""
        if not self.rate:
            return None
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._at) * self.rate)
        self._at = now
        if self.level < 1.0:
            return (1.0 - self.level) / self.rate
        self.level -= 1.0
        return None


def tokens_of(text: str) -> Iterator[str]:
    """The text in streamed pieces: a word and the space after it."""
    start = 0
    for index, char in enumerate(text):
        if char == " ":
            yield text[start:index + 1]
            start = index + 1
    if start < len(text):
        yield text[start:]


class RealtimeEmulator:
    def __init__(self, behaviour: Behaviour, pace: Pace, limit: RateLimit, flex: Flex = Flex()) -> None:
        self._flex = flex
        self._flex_rng = random.Random(behaviour.seed)
        self._behaviour = behaviour
        self._pace = pace
        self._limit = limit

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/messages", self.messages),
            web.post("/v1/chat/completions", self.chat_completions),
            web.post("/v1/embeddings", self.embeddings),
        ]

    def openai_routes(self, prefix: str) -> list[web.RouteDef]:
        """OpenAI's synchronous endpoints under another service's prefix (a declared lane's, or an Azure
        deployment's ``/NAME/openai/deployments/{deployment}``)."""
        return [web.post(f"{prefix}/chat/completions", self.chat_completions),
                web.post(f"{prefix}/embeddings", self.embeddings)]

    # -- Anthropic -----------------------------------------------------------------

    async def messages(self, request: web.Request) -> web.StreamResponse:
        if (wait := self._limit.admit()) is not None:
            return _retry_after(anthropic_error(429, "rate_limit_error", "Number of requests has exceeded your "
                                                "per-minute rate limit"), wait)
        raw = await request.read()
        try:
            params = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return anthropic_error(400, "invalid_request_error", "request body is not valid JSON")
        for name, kind in (("model", str), ("max_tokens", int), ("messages", list)):
            if not isinstance(params.get(name), kind):
                return anthropic_error(400, "invalid_request_error", f"{name}: Field required")
        outcome = self._decide(raw, params, "anthropic")
        if outcome.kind == "errored":
            return anthropic_error(400, "invalid_request_error", outcome.message)
        if outcome.kind == "retryable":
            return anthropic_error(529, "overloaded_error", outcome.message)
        message = _message(params, outcome)
        if not params.get("stream"):
            return web.Response(body=orjson.dumps(message), content_type="application/json")
        return await self._stream(request, _anthropic_events(message), named=True)

    # -- OpenAI ----------------------------------------------------------------------

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        asked = await self._openai_call(request, ("model", "messages"))
        if isinstance(asked, web.Response):
            return asked
        body, outcome = asked
        completion = _response_body("/v1/chat/completions", body, outcome)
        if body.get("service_tier") == "flex":
            busy = b"#emulate:flex-busy" in orjson.dumps(body.get("messages"))
            if busy or self._flex_rng.random() < self._flex.unavailable_rate:
                return openai_error(429, "Resource unavailable: flex processing has no capacity now. Please try "
                                    "again later, or use the default service tier.", "resource_unavailable",
                                    "resource_unavailable")
            await asyncio.sleep(self._flex.latency_s)
            completion["service_tier"] = "flex"
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(completion), content_type="application/json")
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._stream(request, _chat_chunks(completion, with_usage), named=False)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        asked = await self._openai_call(request, ("model", "input"))
        if isinstance(asked, web.Response):
            return asked
        body, outcome = asked
        return web.Response(body=orjson.dumps(_response_body("/v1/embeddings", body, outcome)),
                            content_type="application/json")

    async def _openai_call(self, request: web.Request,
                           required: tuple[str, ...]) -> tuple[Json, Outcome] | web.Response:
        """The request's body and what becomes of it, or the error response the provider would give."""
        if (wait := self._limit.admit()) is not None:
            limited = openai_error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
            return _retry_after(limited, wait)
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        for name in required:
            if body.get(name) in (None, "", []):
                return openai_error(400, f"Missing required parameter: '{name}'.", param=name,
                                    code="missing_required_parameter")
        outcome = self._decide(raw, body, "openai")
        if outcome.kind == "errored":
            return openai_error(400, outcome.message)
        if outcome.kind == "retryable":
            return openai_error(500, outcome.message, "server_error")
        return body, outcome

    # -- both ------------------------------------------------------------------------

    def _decide(self, raw: bytes, body: Json, provider: str) -> Outcome:
        # A synchronous request has no custom_id: the same body again is the same request retried.
        return self._behaviour.decide("sync-" + hashlib.sha256(raw).hexdigest()[:32], raw, body, provider)

    async def _stream(self, request: web.Request, events: Iterator[tuple[str, Json | str, bool]],
                      named: bool) -> web.StreamResponse:
        """Send ``(event name, data, is a token)`` as SSE, pacing the tokens."""
        response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8",
                                               "cache-control": "no-cache"})
        await response.prepare(request)
        first = True
        for name, data, is_token in events:
            if is_token:
                delay = self._pace.first_token_s if first else self._pace.token_s
                first = False
                if delay:
                    await asyncio.sleep(delay)
            payload = data if isinstance(data, str) else orjson.dumps(data).decode()
            await response.write((f"event: {name}\n" if named else "").encode() + f"data: {payload}\n\n".encode())
        await response.write_eof()
        return response


def _retry_after(response: web.Response, seconds: float) -> web.Response:
    response.headers["retry-after"] = str(max(1, math.ceil(seconds)))
    response.headers["retry-after-ms"] = str(max(1, math.ceil(seconds * 1000)))
    return response


def _anthropic_events(message: Json) -> Iterator[tuple[str, Json | str, bool]]:
    """Anthropic's stream of the whole ``message``: message_start; per content block its start, its deltas
    (text, citations, thinking and its signature, a tool's input as JSON in pieces) and its stop;
    message_delta with the stop reason and usage; message_stop."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}, False
    yield "ping", {"type": "ping"}, False
    for index, block in enumerate(message["content"]):
        yield "content_block_start", {"type": "content_block_start", "index": index,
                                      "content_block": _block_start(block)}, False
        for delta, is_token in _block_deltas(block):
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}, is_token
        yield "content_block_stop", {"type": "content_block_stop", "index": index}, False
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                                               "stop_sequence": None},
                            "usage": {"output_tokens": usage["output_tokens"]}}, False
    yield "message_stop", {"type": "message_stop"}, False


def _block_start(block: Json) -> Json:
    """A content block as its stream opens it: empty, its deltas to come."""
    if block["type"] == "text":
        return {"type": "text", "text": ""}
    if block["type"] == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {**block, "input": {}}  # tool_use


def _block_deltas(block: Json) -> Iterator[tuple[Json, bool]]:
    if block["type"] == "text":
        for citation in block.get("citations") or ():
            yield {"type": "citations_delta", "citation": citation}, False
        for piece in tokens_of(block["text"]):
            yield {"type": "text_delta", "text": piece}, True
    elif block["type"] == "thinking":
        for piece in tokens_of(block["thinking"]):
            yield {"type": "thinking_delta", "thinking": piece}, True
        yield {"type": "signature_delta", "signature": block["signature"]}, False
    else:
        for piece in _pieces(orjson.dumps(block["input"]).decode()):
            yield {"type": "input_json_delta", "partial_json": piece}, True


def _pieces(text: str, size: int = 7) -> Iterator[str]:
    """JSON text cut anywhere, as the providers stream a tool's arguments."""
    for at in range(0, len(text), size):
        yield text[at:at + size]


def _chat_chunks(completion: Json, with_usage: bool) -> Iterator[tuple[str, Json | str, bool]]:
    """OpenAI's stream of the whole ``completion``: chat.completion.chunk objects (the role first, then the
    content, refusal or tool calls in pieces, then the finish reason), a usage chunk if asked for, [DONE]."""
    head = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"], "system_fingerprint": completion["system_fingerprint"]}
    extra = {"usage": None} if with_usage else {}
    [choice] = completion["choices"]
    message = choice["message"]

    def chunk(delta: Json, finish: str | None = None) -> Json:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}

    calls = message.get("tool_calls") or []
    first: Json = {"role": "assistant", "content": "" if message["content"] is not None else None,
                   "refusal": "" if message["refusal"] is not None else None}
    if calls:
        first["tool_calls"] = [{"index": index, "id": call["id"], "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""}}
                               for index, call in enumerate(calls)]
    yield "", chunk(first), False
    for piece in tokens_of(message["content"] or ""):
        yield "", chunk({"content": piece}), True
    for piece in tokens_of(message["refusal"] or ""):
        yield "", chunk({"refusal": piece}), True
    for index, call in enumerate(calls):
        for piece in _pieces(call["function"]["arguments"]):
            yield "", chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}), True
    yield "", chunk({}, choice["finish_reason"]), False
    if with_usage:
        yield "", {**head, "choices": [], "usage": completion["usage"]}, False
    yield "", "[DONE]", False
