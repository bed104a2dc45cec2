"""OpenAI's batch input and request types, which every OpenAI-shaped provider shares; pure."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from core.limits import BatchGroup
from core.request_types import Check, compile_type, problem
from providers.wire import ModelInBody
from core.spec import Item

__all__ = ["DEFAULT_ENDPOINT", "ENDPOINTS", "Wire"]

DEFAULT_ENDPOINT = "/v1/chat/completions"
ENDPOINTS = frozenset({DEFAULT_ENDPOINT, "/v1/embeddings", "/v1/responses"})


@cache
def _check(endpoint: str | None) -> Check | None:
    """The SDK's request type of ``endpoint`` (imported when the first item is checked); None if unknown."""
    if endpoint == "/v1/embeddings":
        from openai.types.embedding_create_params import EmbeddingCreateParams
        return compile_type(EmbeddingCreateParams)
    if endpoint == "/v1/responses":
        from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming
        return compile_type(ResponseCreateParamsNonStreaming)
    if endpoint in (None, DEFAULT_ENDPOINT):
        from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
        return compile_type(CompletionCreateParamsNonStreaming)
    return None  # a lane's own endpoint: the service judges it


class Wire(ModelInBody):
    """``{"custom_id", "method", "url", "body"}`` lines; one endpoint and one model per input file."""

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
