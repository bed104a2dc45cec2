"""Anthropic's Message Batches API: ``/v1/messages/batches``.

A batch is ``in_progress`` until it ends; its ``request_counts`` stay at
``processing`` until then, as the real API's do. Results are JSONL lines of
``succeeded``, ``errored``, ``canceled`` or ``expired`` results at ``results_url``.

Requests are validated where the real API does it: their shape at create (a 400
naming the first offending request, ``requests.N.params.field: ...``, and no batch),
what the values mean per request in the results (``errored``, invalid_request_error).
``#emulate:refuse-unnamed`` in a request makes the create refuse without naming it.
"""

from __future__ import annotations

import re
import time
import typing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

from emulator.answers import anthropic_content
from emulator.behaviour import Behaviour, Outcome
from emulator.ids import new_id
from emulator.downloads import broken_off
from emulator.recorder import Recorder

Json = dict[str, Any]

MAX_REQUESTS = 100_000
MAX_BODY_BYTES = 256 * 1024 * 1024
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
DAY = 24 * 3600
RESULTS_KEPT_S = 29 * DAY


def error(status: int, type_: str, message: str) -> web.Response:
    body = orjson.dumps({"type": "error", "error": {"type": type_, "message": message},
                         "request_id": new_id("req_")})
    return web.Response(body=body, status=status, content_type="application/json")


def _rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class MessageBatch:
    id: str
    created_at: float
    requests: list[tuple[str, bytes, Json]]
    ended_at: float | None = None
    cancel_initiated_at: float | None = None
    results: bytes = b""
    counts: dict[str, int] = field(default_factory=dict)


class AnthropicEmulator:
    """In-memory state of the emulated Anthropic workspace."""

    def __init__(self, behaviour: Behaviour, batch_seconds: float, recorder: Recorder,
                 expires_after_s: float = DAY, queue_limit: int = 0, transient_404_s: float = 0.0,
                 messy: bool = False, prefix: str = "") -> None:
        self.prefix = prefix  # "/NAME": another account speaking this API, served under its name
        self.messy = messy
        self._cut: set[str] = set()  # batches whose first results download broke off (messy)
        self.queue_limit = queue_limit
        self.transient_404_s = transient_404_s
        self.behaviour = behaviour
        self.batch_seconds = batch_seconds
        self.expires_after_s = expires_after_s
        self.recorder = recorder
        self.batches: dict[str, MessageBatch] = {}

    def routes(self) -> list[web.RouteDef]:
        batches = f"{self.prefix}/v1/messages/batches"
        return [
            web.post(batches, self.create),
            web.get(batches, self.list_all),
            web.get(f"{batches}/{{id}}", self.retrieve),
            web.post(f"{batches}/{{id}}/cancel", self.cancel),
            web.delete(f"{batches}/{{id}}", self.delete),
            web.get(f"{batches}/{{id}}/results", self.results),
        ]

    async def create(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return error(413, "request_too_large", f"Request exceeds the maximum size of {MAX_BODY_BYTES} bytes.")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return error(400, "invalid_request_error", "The request body is not valid JSON.")
        entries = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            return error(400, "invalid_request_error", "requests: Field required and must be a non-empty list")
        if len(entries) > MAX_REQUESTS:
            return error(400, "invalid_request_error", f"requests: at most {MAX_REQUESTS} requests per batch")
        seen: set[str] = set()
        accepted: list[tuple[str, bytes, Json]] = []
        if b"#emulate:refuse-unnamed" in orjson.dumps(entries):
            return error(400, "invalid_request_error", "The batch could not be validated (#emulate:refuse-unnamed).")
        for index, entry in enumerate(entries):
            problem = _problem(entry, seen)
            if problem:
                return error(400, "invalid_request_error", f"requests.{index}.{problem}")
            seen.add(entry["custom_id"])
            accepted.append((entry["custom_id"], orjson.dumps(entry["params"]), entry["params"]))
        if self.queue_limit and self._processing() + len(accepted) > self.queue_limit:
            return error(429, "rate_limit_error", f"Number of requests in the processing queue would exceed "
                         f"your organization's limit of {self.queue_limit:,}. Please wait for some batches to "
                         "finish processing and try again.")
        batch = MessageBatch(new_id("msgbatch_"), time.time(), accepted)
        self.batches[batch.id] = batch
        self.recorder.record("anthropic", batch.id, [r[0] for r in accepted])
        return self._json(self._describe(batch, request))

    def _processing(self) -> int:
        """Requests still in the workspace's processing queue (a batch is done when its time is up)."""
        now = time.time()
        return sum(len(b.requests) for b in self.batches.values()
                   if b.ended_at is None and b.cancel_initiated_at is None and now - b.created_at < self.batch_seconds)

    async def retrieve(self, request: web.Request) -> web.Response:
        batch = self._find(request)
        if batch is None or self._not_yet_visible(batch):
            return error(404, "not_found_error", f"Message batch {request.match_info['id']} not found.")
        return self._json(self._describe(batch, request))

    async def list_all(self, request: web.Request) -> web.Response:
        limit = min(1000, int(request.query.get("limit", 20)))
        # What a retrieve does not see yet, a listing does not show either: both read the same store.
        visible = (b for b in self.batches.values() if not self._not_yet_visible(b))
        newest = sorted(visible, key=lambda b: b.created_at, reverse=True)
        ids = [b.id for b in newest]
        if (after := request.query.get("after_id")) in ids:
            newest = newest[ids.index(after) + 1:]
        elif (before := request.query.get("before_id")) in ids:
            newest = newest[:ids.index(before)][-limit:]
        for batch in newest[:limit]:
            self._advance(batch)  # a listing shows each batch as it is now, as a retrieve would
        page = [self._describe(b, request) for b in newest[:limit]]
        return self._json({"data": page, "has_more": len(newest) > limit,
                           "first_id": page[0]["id"] if page else None,
                           "last_id": page[-1]["id"] if page else None})

    async def cancel(self, request: web.Request) -> web.Response:
        batch = self._find(request)
        if batch is None:
            return error(404, "not_found_error", f"Message batch {request.match_info['id']} not found.")
        if batch.ended_at is None and batch.cancel_initiated_at is None:
            batch.cancel_initiated_at = time.time()
        return self._json(self._describe(batch, request))

    async def delete(self, request: web.Request) -> web.Response:
        batch = self._find(request)
        if batch is None:
            return error(404, "not_found_error", f"Message batch {request.match_info['id']} not found.")
        if batch.ended_at is None:
            return error(400, "invalid_request_error", "A batch can be deleted only once it has ended.")
        del self.batches[batch.id]
        return self._json({"id": batch.id, "type": "message_batch_deleted"})

    async def results(self, request: web.Request) -> web.StreamResponse:
        batch = self._find(request)
        if batch is None or self._not_yet_visible(batch):
            return error(404, "not_found_error", f"Message batch {request.match_info['id']} not found.")
        if batch.ended_at is None:
            return error(400, "invalid_request_error", "The batch has not ended: no results yet.")
        if self.messy and batch.id not in self._cut:
            self._cut.add(batch.id)
            return await broken_off(request, batch.results)
        return web.Response(body=batch.results, content_type="application/binary")

    def _not_yet_visible(self, batch: MessageBatch) -> bool:
        """Right after a create, retrieve and results answer 404 for a while (anthropic-sdk-python#1432)."""
        return time.time() - batch.created_at < self.transient_404_s

    def _find(self, request: web.Request) -> MessageBatch | None:
        batch = self.batches.get(request.match_info["id"])
        if batch is not None:
            self._advance(batch)
        return batch

    def _advance(self, batch: MessageBatch) -> None:
        now = time.time()
        if batch.ended_at is not None:
            return
        if batch.cancel_initiated_at is not None and now - batch.cancel_initiated_at >= 0.5:
            share = (batch.cancel_initiated_at - batch.created_at) / max(self.batch_seconds, 1e-9)
            self._end(batch, now, int(len(batch.requests) * min(1.0, share)))
        elif batch.cancel_initiated_at is None and now - batch.created_at >= self.batch_seconds:
            self._end(batch, now, None)

    def _end(self, batch: MessageBatch, now: float, cancelled_after: int | None) -> None:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        lines: list[bytes] = []
        for index, (custom_id, raw, params) in enumerate(batch.requests):
            if cancelled_after is not None and index >= cancelled_after:
                result: Json = {"type": "canceled"}
            elif (meaning := _meaningless(params)) is not None:
                result = {"type": "errored", "error": {"type": "error",
                                                      "error": {"type": "invalid_request_error", "message": meaning}}}
            else:
                outcome = self.behaviour.decide(custom_id, raw, params, "anthropic")
                if outcome.kind == "ok":
                    result = {"type": "succeeded", "message": _message(params, outcome)}
                elif outcome.kind == "expired":
                    result = {"type": "expired"}
                else:
                    kind = "invalid_request_error" if outcome.kind == "errored" else "overloaded_error"
                    result = {"type": "errored", "error": {"type": "error",
                                                          "error": {"type": kind, "message": outcome.message}}}
            counts[result["type"]] += 1
            lines.append(orjson.dumps({"custom_id": custom_id, "result": result}))
        batch.results = b"\n".join(lines) + b"\n"
        batch.counts = counts
        batch.ended_at = now

    def _describe(self, batch: MessageBatch, request: web.Request) -> Json:
        counts = batch.counts or {"processing": len(batch.requests), "succeeded": 0, "errored": 0,
                                  "canceled": 0, "expired": 0}
        if batch.ended_at is not None:
            status = "ended"
        elif batch.cancel_initiated_at is not None:
            status = "canceling"
        else:
            status = "in_progress"
        results_url = None
        if batch.ended_at is not None:
            results_url = f"{request.scheme}://{request.host}{self.prefix}/v1/messages/batches/{batch.id}/results"
        return {
            "id": batch.id, "type": "message_batch", "processing_status": status,
            "request_counts": counts, "created_at": _rfc3339(batch.created_at),
            "expires_at": _rfc3339(batch.created_at + self.expires_after_s), "ended_at": _rfc3339(batch.ended_at),
            "archived_at": None, "cancel_initiated_at": _rfc3339(batch.cancel_initiated_at),
            "results_url": results_url,
        }

    @staticmethod
    def _json(body: Json) -> web.Response:
        return web.Response(body=orjson.dumps(body), content_type="application/json")


def _problem(entry: Any, seen: set[str]) -> str | None:
    if not isinstance(entry, dict):
        return "must be an object"
    custom_id = entry.get("custom_id")
    if not isinstance(custom_id, str) or not CUSTOM_ID.fullmatch(custom_id):
        return "custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"
    if custom_id in seen:
        return f"custom_id: '{custom_id}' is not unique within the batch"
    params = entry.get("params")
    if not isinstance(params, dict):
        return "params: Field required"
    if b"#emulate:refuse-named" in orjson.dumps(params):  # what the API refuses and no client-side check sees
        return "params.messages.0.content: this request cannot be processed (#emulate:refuse-named)"
    if unknown := sorted(set(params) - _PARAMS):
        return f"params.{unknown[0]}: Extra inputs are not permitted"
    for name, kind in (("model", str), ("max_tokens", int), ("messages", list)):
        if name not in params:
            return f"params.{name}: Field required"
        if not isinstance(params[name], kind) or isinstance(params[name], bool):
            return f"params.{name}: Input should be a valid {'integer' if kind is int else kind.__name__}"
    for number, message in enumerate(params["messages"]):
        if not isinstance(message, dict):
            return f"params.messages.{number}: Input should be a valid dictionary"
        if message.get("role") not in ("user", "assistant"):
            return f"params.messages.{number}.role: Input should be 'user' or 'assistant'"
        if not isinstance(message.get("content"), (str, list)):
            return f"params.messages.{number}.content: Input should be a valid string or list"
    return None


#: The fields a Messages request may have: the API refuses any other at create.
_PARAMS = frozenset(typing.get_type_hints(MessageCreateParamsNonStreaming)) - {"stream"}


def _meaningless(params: Json) -> str | None:
    """What the real API finds wrong with a well-shaped request only when it runs it."""
    if params["max_tokens"] < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    if not params["messages"]:
        return "messages: at least one message is required"
    if params["messages"][0].get("role") != "user":
        return "messages: the first message must use the user role"
    return None


def _message(params: Json, outcome: Outcome) -> Json:
    content, stop_reason = anthropic_content(params, outcome)
    return {
        "id": new_id("msg_"), "type": "message", "role": "assistant",
        "model": params["model"], "content": content,
        "stop_reason": stop_reason, "stop_sequence": None, "stop_details": None,
        "usage": _usage(outcome),
    }


def _usage(outcome: Outcome) -> Json:
    """Anthropic's usage: ``input_tokens`` is what was neither written to the cache nor read from it."""
    cached = outcome.cached
    return {"input_tokens": outcome.input_tokens - sum(cached), "output_tokens": outcome.output_tokens,
            "cache_creation_input_tokens": cached.write + cached.write_1h, "cache_read_input_tokens": cached.read,
            "cache_creation": {"ephemeral_5m_input_tokens": cached.write, "ephemeral_1h_input_tokens": cached.write_1h}}
