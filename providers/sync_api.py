"""Where the providers' synchronous APIs are and how to authenticate to them, from the SDKs' own variables.

The realtime endpoint and the async-queue agent call them over plain HTTP (aiohttp), so that
a body goes through as the provider wrote it and a 429's ``retry-after`` is seen by tierline's
own throttle; with no base URL set, these are the real providers. The SDKs' own variables
count as they do for the SDKs: ``ANTHROPIC_AUTH_TOKEN`` (a bearer token, when there is no
``ANTHROPIC_API_KEY``), ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``; and ``HTTPS_PROXY`` /
``NO_PROXY`` (the sessions trust the environment).
"""

from __future__ import annotations

import os
from typing import Mapping, NamedTuple

import orjson

from core.lanes import Lane, declared
from schemas import ErrorInfo

__all__ = ["Answer", "Upstream", "upstream", "error_info", "retryable_status", "retry_after_s"]


class Upstream(NamedTuple):
    url: str
    headers: dict[str, str]


class Answer(NamedTuple):
    """A synchronous call's answer: its status, its body, and how long the provider asked to wait, if it did."""

    status: int
    body: bytes
    retry_after_s: float | None = None


def upstream(provider: str, path: str, incoming: Mapping[str, str] | None = None, model: str = "") -> Upstream:
    """The URL of the provider's ``path`` (``/v1/...``; Gemini's ``/v1beta/models/...``) and the headers to call it
    with."""
    incoming, env = incoming or {}, os.environ
    if provider == "anthropic":
        base = (env.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com").rstrip("/")
        headers = {"anthropic-version": incoming.get("anthropic-version", "2023-06-01"),
                   "content-type": "application/json"}
        if env.get("ANTHROPIC_API_KEY") or not env.get("ANTHROPIC_AUTH_TOKEN"):
            headers["x-api-key"] = env.get("ANTHROPIC_API_KEY", "")
        else:  # as the SDK does: a bearer token when there is no API key
            headers["authorization"] = f"Bearer {env['ANTHROPIC_AUTH_TOKEN']}"
        if beta := incoming.get("anthropic-beta"):
            headers["anthropic-beta"] = beta
        return Upstream(base + path, headers)
    if (lane := declared(provider)) is not None:
        return _lane_upstream(lane, path, model)
    if provider == "gemini":  # google-genai's variables; GOOGLE_API_KEY first when both are set, as it does
        base = (env.get("GOOGLE_GEMINI_BASE_URL") or "https://generativelanguage.googleapis.com").rstrip("/")
        key = env.get("GOOGLE_API_KEY") or env.get("GEMINI_API_KEY", "")
        return Upstream(base + path, {"x-goog-api-key": key, "content-type": "application/json"})
    base = (env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
    headers = {"authorization": f"Bearer {env.get('OPENAI_API_KEY', '')}", "content-type": "application/json"}
    for variable, header in (("OPENAI_ORG_ID", "openai-organization"), ("OPENAI_PROJECT_ID", "openai-project")):
        if value := env.get(variable):
            headers[header] = value
    return Upstream(base + path.removeprefix("/v1"), headers)


def _lane_upstream(lane: Lane, path: str, model: str) -> Upstream:
    """A declared lane's synchronous API: OpenAI's paths under its base URL, or Azure's per deployment."""
    key, base = os.environ.get(lane.api_key_env, ""), lane.address.rstrip("/")
    if lane.kind == "azure-openai":
        url = f"{base}/openai/deployments/{model}{path.removeprefix('/v1')}?api-version={lane.api_version}"
        return Upstream(url, {"api-key": key, "content-type": "application/json"})
    return Upstream(base + path.removeprefix("/v1"), {"authorization": f"Bearer {key}",
                                                      "content-type": "application/json"})


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
