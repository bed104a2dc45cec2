"""Delivering async-tier results to their ``callback_url``: checked, signed, retried with backoff.

Callbacks have a session of their own (``callback_session``): its resolver keeps only addresses a
callback may reach, so the address checked is the address connected to, however the name resolves
the second time (DNS rebinding); redirects are never followed; no proxy stands in between.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import NamedTuple

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult

from core.callbacks import SIGNATURE_HEADER, address_refusal, parse_secrets, sign, standard_headers, url_refusal
from schemas import ErrorInfo
from streams.settings import Settings

__all__ = ["AddressRefused", "Attempt", "CheckedResolver", "callback_session", "deliver", "deliver_once"]

log = structlog.get_logger(__name__)


class AddressRefused(OSError):
    """A callback's host resolved, at connect time, to an address callbacks may not reach."""


class CheckedResolver(AbstractResolver):
    """Resolves through ``lookup`` and refuses a host any of whose addresses callbacks may not reach."""

    def __init__(self, allow_private: bool = False, lookup: AbstractResolver | None = None) -> None:
        self._allow_private = allow_private
        self._lookup = lookup or aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._lookup.resolve(host, port, family)
        if not self._allow_private:
            for result in found:
                if (refused := address_refusal(result["host"])) is not None:
                    raise AddressRefused(f"host {host!r} is at {result['host']}, {refused}")
        return found

    async def close(self) -> None:
        await self._lookup.close()


def callback_session(settings: Settings, lookup: AbstractResolver | None = None) -> aiohttp.ClientSession:
    """The session callbacks go out through: checked addresses only, direct (no proxy from the environment)."""
    resolver = CheckedResolver(bool(settings.callback_allow_private), lookup)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver), trust_env=False,
                                 timeout=aiohttp.ClientTimeout(total=30))


class Attempt(NamedTuple):
    """One delivery attempt: taken (2xx), or why not, and whether trying again could help."""

    taken: bool
    error: ErrorInfo | None = None
    final: bool = False  # refused: no later attempt would be let through either


async def deliver_once(session: aiohttp.ClientSession, settings: Settings, url: str, body: bytes, custom_id: str,
                       message_id: str, number: int) -> Attempt:
    """POST ``body`` to ``url`` once, through ``callback_session``, signed per Standard Webhooks as ``message_id``."""
    secrets = parse_secrets(settings.callback_secrets)
    if not secrets and not settings.callback_secret:
        return Attempt(False, ErrorInfo(type="callback_refused",
                                        message="no TIERLINE_CALLBACK_SECRETS is set to sign callbacks with"), True)
    try:
        refusal = url_refusal(url, bool(settings.callback_allow_private))
    except ValueError as exc:  # not a URL at all: checked at ingest, so only from an older worker's items
        refusal = f"not a valid URL ({exc})"
    if refusal is not None:
        return Attempt(False, ErrorInfo(type="callback_refused", message=f"{url}: {refusal}"), True)
    now = int(time.time())
    headers = {"content-type": "application/json"}
    if secrets:
        headers.update(standard_headers(secrets, message_id, body, now))
    if settings.callback_secret:
        headers[SIGNATURE_HEADER] = sign(settings.callback_secret.encode(), body, now)
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            if 200 <= response.status < 300:
                return Attempt(True)
            problem = f"HTTP {response.status}"  # a redirect too: never followed
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, AddressRefused):  # it resolved elsewhere than when checked
            return Attempt(False, ErrorInfo(type="callback_refused", message=f"{url}: {exc.os_error}"), True)
        problem = str(exc) or type(exc).__name__
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        problem = str(exc) or type(exc).__name__
    log.warning("callback_failed", custom_id=custom_id, url=url, attempt=number, error=problem)
    return Attempt(False, ErrorInfo(type="callback_failed", message=f"{url}: {problem} after {number} attempts"))


async def deliver(session: aiohttp.ClientSession, settings: Settings, url: str, body: bytes,
                  custom_id: str, message_id: str) -> ErrorInfo | None:
    """Every attempt in turn, here and now; None once it was taken, else why it never was. (The async tier
    queues its callbacks on ``tierline.callbacks`` instead, so that a worker's death loses none.)"""
    delay = settings.callback_retry_s
    for number in range(1, settings.callback_attempts + 1):
        tried = await deliver_once(session, settings, url, body, custom_id, message_id, number)
        if tried.taken or tried.final or number == settings.callback_attempts:
            return tried.error
        await asyncio.sleep(delay)
        delay *= 2
    return None
