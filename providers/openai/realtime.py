"""OpenAI's dialect where tierline stands in for its chat and embeddings APIs (``/realtime/openai/v1/...``)."""

from __future__ import annotations

from typing import Any

import orjson

from providers.streamed import openai_completion

__all__ = ["Realtime"]


class Realtime:
    paths: tuple[str, ...] = ("/v1/chat/completions", "/v1/embeddings")

    def error(self, status: int, message: str, kind: str = "") -> bytes:
        return orjson.dumps({"error": {"message": message, "type": kind or "server_error", "param": None,
                                       "code": None}})

    def unauthorized(self) -> bytes:
        return orjson.dumps({"error": {"message": "Incorrect API key provided: give one of the worker's "
                                       "TIERLINE_REALTIME_KEYS as the client's API key.",
                                       "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})

    def whole(self, streamed: bytes) -> dict[str, Any] | None:
        return openai_completion(streamed)

    def with_usage(self, path: str, body: bytes, doc: dict[str, Any]) -> bytes:
        """A streamed chat call reports its usage only if asked: ask, so that its cost is known.

        The client then gets one more chunk, with no choices and the usage, which the SDKs expect.
        """
        if path != "/v1/chat/completions" or doc.get("stream") is not True:
            return body
        options = doc.get("stream_options") or {}
        if not isinstance(options, dict) or options.get("include_usage"):
            return body  # the provider says what is wrong with options that are not an object
        return orjson.dumps({**doc, "stream_options": {**options, "include_usage": True}})
