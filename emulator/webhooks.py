"""Webhooks as the providers send them when a batch ends: Standard Webhooks signatures (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``), delivered at least once, retried on failure, and, as at the real
providers, now and then twice or late.

OpenAI sends every batch's events to the project's one endpoint (``POST /_emulator/webhooks`` sets it, with its
secret, as the dashboard does); Gemini to the ``webhookConfig.uris`` a job was created with, signed with the
project's secret. A ticker moves time on for the batches nobody polls, so that they end, and are announced,
on time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import aiohttp
import orjson
from aiohttp import web
from standardwebhooks import Webhook

from emulator.ids import new_id

__all__ = ["Notifier"]

TICK_S = 0.1
RETRIES_S = (0.5, 1.0, 2.0, 4.0)  # waits between deliveries of one event that failed
TWICE_EVERY = 5  # every fifth event is delivered twice...
LATE_EVERY = 7  # ...and every seventh a while late
LATE_S = 1.5


@dataclass
class Notifier:
    """Where each provider's webhooks go, and the deliveries under way."""

    openai_url: str = ""
    openai_secret: str = ""
    gemini_secret: str = ""
    sent: int = 0  # events announced
    delivered: list[dict[str, Any]] = field(default_factory=list)  # each delivery answered 2xx: type, id, status
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    async def configure(self, request: web.Request) -> web.Response:
        """``{"openai": {"url", "secret"}, "gemini": {"secret"}}``; an empty body turns them off."""
        doc = await request.json() if request.can_read_body else {}
        openai, gemini = doc.get("openai") or {}, doc.get("gemini") or {}
        self.openai_url, self.openai_secret = openai.get("url", ""), openai.get("secret", "")
        self.gemini_secret = gemini.get("secret", "")
        return web.json_response({"openai": bool(self.openai_url), "gemini": bool(self.gemini_secret),
                                  "delivered": self.delivered})

    def announce(self, urls: list[str], secret: str, event_type: str, data: dict[str, Any]) -> None:
        """A batch ended: its event to each of ``urls``, signed with ``secret``."""
        if not secret:
            return
        self.sent += 1
        event = {"id": new_id("evt_"), "object": "event", "created_at": int(time.time()), "type": event_type,
                 "data": data}
        times = 2 if self.sent % TWICE_EVERY == 0 else 1
        delay = LATE_S if self.sent % LATE_EVERY == 0 else 0.0
        for url in urls:
            for _ in range(times):
                task = asyncio.get_running_loop().create_task(self._deliver(url, secret, event, delay))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, secret: str, event: dict[str, Any], delay: float) -> None:
        await asyncio.sleep(delay)
        body = orjson.dumps(event)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        for wait in (*RETRIES_S, None):
            now = int(time.time())
            signature = Webhook(secret).sign(event["id"], datetime.fromtimestamp(now, timezone.utc), body)
            headers = {"webhook-id": event["id"], "webhook-timestamp": str(now), "webhook-signature": signature,
                       "content-type": "application/json"}
            try:
                async with self._session.post(url, data=body, headers=headers) as answer:
                    if answer.status < 300:
                        self.delivered.append({"type": event["type"], "id": event["id"], "status": answer.status})
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            if wait is None:
                return
            await asyncio.sleep(wait)

    async def tick(self, advance: Callable[[], None]) -> None:
        """Move time on for every batch, as the providers' own clocks do, while anyone listens for webhooks."""
        while True:
            await asyncio.sleep(TICK_S)
            if self.openai_url or self.gemini_secret:
                advance()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()

