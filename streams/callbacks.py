"""Delivering async-tier results to their ``callback_url``: checked, signed, retried with backoff."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

import aiohttp
import structlog

from core.callbacks import SIGNATURE_HEADER, sign, url_refusal
from schemas import ErrorInfo
from streams.settings import Settings

__all__ = ["deliver"]

log = structlog.get_logger(__name__)


async def deliver(session: aiohttp.ClientSession, settings: Settings, url: str, body: bytes,
                  custom_id: str) -> ErrorInfo | None:
    """POST ``body`` to ``url``; None once it was taken (2xx), else why it never was."""
    if not settings.callback_secret:
        return ErrorInfo(type="callback_refused", message="no TIERLINE_CALLBACK_SECRET is set to sign callbacks with")
    try:
        refusal = url_refusal(url, await _addresses(url), bool(settings.callback_allow_private))
    except ValueError as exc:  # not a URL at all: checked at ingest, so only from an older worker's items
        refusal = f"not a valid URL ({exc})"
    if refusal is not None:
        return ErrorInfo(type="callback_refused", message=f"{url}: {refusal}")
    secret = settings.callback_secret.encode()
    delay, problem = settings.callback_retry_s, ""
    for attempt in range(1, settings.callback_attempts + 1):
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(secret, body, int(time.time()))}
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=30)) as response:
                if 200 <= response.status < 300:
                    return None
                problem = f"HTTP {response.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            problem = str(exc) or type(exc).__name__
        log.warning("callback_failed", custom_id=custom_id, url=url, attempt=attempt, error=problem)
        if attempt < settings.callback_attempts:
            await asyncio.sleep(delay)
            delay *= 2
    return ErrorInfo(type="callback_failed", message=f"{url}: {problem} after {settings.callback_attempts} attempts")


async def _addresses(url: str) -> list[str]:
    host = urlsplit(url).hostname
    if not host:
        return []
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in found})
