"""Anthropic's dialect where tierline stands in for the Messages API (``/realtime/anthropic/v1/messages``)."""

from __future__ import annotations

from typing import Any

import orjson

from providers.streamed import anthropic_message

__all__ = ["Realtime"]


class Realtime:
    paths: tuple[str, ...] = ("/v1/messages",)

    def error(self, status: int, message: str, kind: str = "") -> bytes:
        return orjson.dumps({"type": "error", "error": {"type": kind or "api_error", "message": message}})

    def unauthorized(self) -> bytes:
        return self.error(401, "invalid x-api-key", "authentication_error")

    def whole(self, streamed: bytes) -> dict[str, Any] | None:
        return anthropic_message(streamed)

    def with_usage(self, path: str, body: bytes, doc: dict[str, Any]) -> bytes:
        return body  # a stream's message_delta carries the usage unasked
