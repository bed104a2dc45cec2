"""OpenAI's batch input and request types, which every OpenAI-shaped provider shares; pure."""

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
from providers.openai import answers
from providers.base import ItemOutcome, ResultFormat
from providers.shape_cache import cached_check, sdk_type
from providers.wire import ModelInBody
from schemas import ErrorInfo

__all__ = ["RESULTS", "outcome", "DEFAULT_ENDPOINT", "ENDPOINTS", "Wire"]

DEFAULT_ENDPOINT = "/v1/chat/completions"
ENDPOINTS = frozenset({DEFAULT_ENDPOINT, "/v1/embeddings", "/v1/responses"})


#: Each endpoint's request type in the SDK: ``module:name``.
_REQUEST_TYPES = {
    DEFAULT_ENDPOINT: "openai.types.chat.completion_create_params:CompletionCreateParamsNonStreaming",
    "/v1/embeddings": "openai.types.embedding_create_params:EmbeddingCreateParams",
    "/v1/responses": "openai.types.responses.response_create_params:ResponseCreateParamsNonStreaming",
}


@cache
def _check(endpoint: str | None) -> Check | None:
    """The SDK's request type of ``endpoint`` (read when the first item is checked); None if unknown."""
    if (request_type := _REQUEST_TYPES.get(endpoint or DEFAULT_ENDPOINT)) is None:
        return None  # a lane's own endpoint: the service judges it
    return cached_check("openai", request_type, lambda: of_typeddict(sdk_type(request_type)))


def outcome(line: dict[str, Any]) -> ItemOutcome:
    custom_id = line.get("custom_id", "")
    response = line.get("response")
    if response and response.get("status_code") == 200:
        body = response.get("body") or {}
        return ItemOutcome(custom_id, body, body.get("usage"), None)
    if response:
        status = response.get("status_code")
        error = (response.get("body") or {}).get("error") or {}
        kind = error.get("type") or error.get("code") or f"http_{status}"
        info = ErrorInfo(type=kind, message=error.get("message") or f"HTTP {status}")
        return ItemOutcome(custom_id, None, None, info, is_retryable(kind, status))
    error = line.get("error") or {}
    code = error.get("code") or "unknown_error"
    return ItemOutcome(custom_id, None, None, ErrorInfo(type=code, message=error.get("message") or code),
                       is_retryable(code))


#: A result line: ``{"custom_id", "response": {"status_code", "body"}}`` or ``{"custom_id", "error"}``.
RESULTS = ResultFormat("custom_id", outcome)


class Wire(ModelInBody):
    """``{"custom_id", "method", "url", "body"}`` lines; one endpoint and one model per input file."""

    results = RESULTS

    def __init__(self, default_endpoint: str = DEFAULT_ENDPOINT) -> None:
        self.default_endpoint = default_endpoint

    def problem(self, endpoint: str | None, fields: dict[str, Any], params: dict[str, Any]) -> str | None:
        return problem(_check(endpoint), params)

    def line(self, item: Item) -> bytes:
        return orjson.dumps({"custom_id": item.custom_id, "method": "POST", "url": self.sync_path(item),
                             "body": item.params})

    def group(self, item: Item) -> BatchGroup:
        return BatchGroup(item.provider, self.sync_path(item), item.params["model"])

    def sync_path(self, item: Item) -> str:
        return item.endpoint or self.default_endpoint

    def answer_schema(self, item: Item) -> dict[str, Any] | None:
        return answers.answer_schema(item.endpoint, item.params)

    def reading(self, response: dict[str, Any]) -> Reading | None:
        return answers.reading(response)
