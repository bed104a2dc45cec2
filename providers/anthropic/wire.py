"""Anthropic's batch requests, request type and result lines; pure."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from core.answers import Reading
from core.limits import BatchGroup
from core.request_shapes import of_typeddict
from core.request_types import Check, problem
from core.retry import is_retryable
from core.spec import Item
from providers.anthropic import answers
from providers.base import ItemOutcome, ResultFormat
from providers.shape_cache import cached_check, sdk_type
from providers.wire import ModelInBody
from schemas import ErrorInfo

__all__ = ["RESULTS", "Wire", "messages_check", "outcome"]


#: The Messages API's request, as the SDK types it: ``module:name``.
MESSAGES = "anthropic.types.message_create_params:MessageCreateParamsNonStreaming"


@cache
def messages_check() -> Check:
    """The Messages API's request check (read when the first item is checked)."""
    return cached_check("anthropic", MESSAGES, lambda: of_typeddict(sdk_type(MESSAGES)))


def outcome(line: dict[str, Any]) -> ItemOutcome:
    custom_id = line.get("custom_id", "")
    result = line.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        message = result.get("message") or {}
        return ItemOutcome(custom_id, message, message.get("usage"), None)
    if kind == "errored":
        error = result.get("error") or {}
        inner: dict[str, Any] = error["error"] if isinstance(error.get("error"), dict) else error
        type_ = inner.get("type") or "api_error"
        return ItemOutcome(custom_id, None, None, ErrorInfo(type=type_, message=inner.get("message") or type_),
                           is_retryable(type_))
    kind = kind or "unknown_result"
    message = {"canceled": "the batch was canceled before this request ran",
               "expired": "the batch expired before this request ran"}.get(kind, kind)
    return ItemOutcome(custom_id, None, None, ErrorInfo(type=kind, message=message), is_retryable(kind))


#: A result line: ``{"custom_id", "result": {"type": "succeeded" | "errored" | "canceled" | "expired", ...}}``.
RESULTS = ResultFormat("custom_id", outcome)


class Wire(ModelInBody):
    """``{"custom_id", "params"}`` lines; one batch may mix models."""

    results = RESULTS

    def problem(self, endpoint: str | None, fields: dict[str, Any], params: dict[str, Any]) -> str | None:
        return problem(messages_check(), params)

    def line(self, item: Item) -> bytes:
        return orjson.dumps({"custom_id": item.custom_id, "params": item.params})

    def group(self, item: Item) -> BatchGroup:
        return BatchGroup(item.provider)

    def sync_path(self, item: Item) -> str:
        return "/v1/messages"

    def answer_schema(self, item: Item) -> dict[str, Any] | None:
        return answers.answer_schema(item.endpoint, item.params)

    def reading(self, response: dict[str, Any]) -> Reading | None:
        return answers.reading(response)
