"""The providers' synchronous answers, read the same way for every provider.

The realtime endpoint and the async-queue agent call the synchronous APIs over plain HTTP (aiohttp),
at the address and with the headers each provider's spec gives (``ProviderSpec.upstream``, from the
SDK's own variables, as the SDK reads them; ``HTTPS_PROXY`` / ``NO_PROXY`` count, the sessions trust
the environment), so that a body goes through as the provider wrote it and a 429's ``retry-after`` is
seen by tierline's own throttle; with no base URL set, these are the real providers.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import orjson

from schemas import ErrorInfo

__all__ = ["Answer", "error_info", "retryable_status", "retry_after_s"]


class Answer(NamedTuple):
    """A synchronous call's answer: its status, its body, and how long the provider asked to wait, if it did."""

    status: int
    body: bytes
    retry_after_s: float | None = None


def error_info(status: int, payload: bytes) -> ErrorInfo:
    """The provider's error in its words: Anthropic's ``error.error``, OpenAI's ``error``, Gemini's ``error.status``."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ErrorInfo(type=f"http_{status}", message=payload.decode(errors="replace")[:500])
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, dict):
        kind = error.get("type") or error.get("status") or error.get("code")
        return ErrorInfo(type=str(kind or f"http_{status}")[:200],
                         message=str(error.get("message"))[:2000])
    return ErrorInfo(type=f"http_{status}", message=str(doc)[:500])


def retryable_status(status: int) -> bool:
    """Timeouts, conflicts, rate limits, overload and server errors pass; the request itself was fine."""
    return status in (408, 409, 429) or status >= 500


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The provider's ``retry-after-ms`` or ``retry-after`` (seconds), if it sent one."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None
