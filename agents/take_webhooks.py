"""Take webhooks: a provider says a batch has ended, and the worker that follows the batch polls it at once.

``POST /webhooks/openai`` and ``POST /webhooks/gemini`` on every worker's web server verify each delivery with the
provider's signing secret (OpenAI's through its SDK, ``client.webhooks.unwrap``; Gemini's as Standard Webhooks)
and refuse what does not verify (401, counted, logged once a minute). A verified event goes to
``tierline.webhooks`` (one partition), which every worker follows from its end: the provider's load balancer
picks any worker, and the one following the batch may be another. That one polls the batch now rather than at
its next timer (``PollBatches.wake``). Deliveries come at least once, late, twice, out of order: a wake only
brings a poll forward, and the poll reads the provider's own status, so none of that changes a batch twice.
"""

from __future__ import annotations

import os
import time
from typing import Any, Awaitable, Callable

import orjson
import structlog
from aiohttp import web
from aiokafka import TopicPartition
from mode import Service
from standardwebhooks import Webhook, WebhookVerificationError

from streams import metrics
from streams.kafka.publish import Message
from streams.kafka.whole_topic import reader
from streams.runtime import Runtime

__all__ = ["TakeWebhooks"]

log = structlog.get_logger(__name__)

REFUSAL_LOG_EVERY_S = 60.0
#: Event types that say a batch has ended, by provider.
ENDED = {"openai": ("batch.completed", "batch.failed", "batch.expired", "batch.cancelled"),
         "gemini": ("batch.succeeded", "batch.failed", "batch.cancelled", "batch.expired")}


class TakeWebhooks(Service):
    """The webhook endpoints, and the follower of ``tierline.webhooks`` that wakes the poller."""

    def __init__(self, runtime: Runtime, wake: Callable[[str, str], bool]) -> None:
        super().__init__()
        self.runtime = runtime
        self._wake = wake  # (provider, batch id) → whether this worker follows that batch
        self._refused_logged_at = float("-inf")
        self._openai: Any = None  # the SDK's client, made when the first OpenAI webhook comes

    @property
    def secrets(self) -> dict[str, str]:
        """The providers whose webhooks this deployment verifies, and their secrets."""
        found = {"openai": os.environ.get("OPENAI_WEBHOOK_SECRET", ""),
                 "gemini": self.runtime.settings.gemini_webhook_secret}
        return {provider: secret for provider, secret in found.items() if secret}

    def routes(self) -> dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        return {f"/webhooks/{provider}": self._handler(provider) for provider in ENDED}

    def _handler(self, provider: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        return lambda request: self.take(request, provider)

    async def take(self, request: web.Request, provider: str) -> web.Response:
        secret = self.secrets.get(provider)
        if secret is None:
            return web.json_response({"error": f"{provider} webhooks are not configured here (its signing secret "
                                      "is not set)"}, status=404)
        body = await request.read()
        try:
            event = self._verified(provider, body, dict(request.headers), secret)
        except Exception as exc:  # noqa: BLE001 - whatever fails to verify is refused, alike
            metrics.webhooks.labels(provider, "refused").inc()
            if time.monotonic() - self._refused_logged_at > REFUSAL_LOG_EVERY_S:
                self._refused_logged_at = time.monotonic()
                log.warning("webhook_refused", provider=provider, peer=request.remote, error=str(exc)[:200])
            return web.json_response({"error": "the signature does not verify"}, status=401)
        batch_id = _batch_id(provider, event)
        if event.get("type") not in ENDED[provider] or batch_id is None:
            metrics.webhooks.labels(provider, "ignored").inc()
            return web.json_response({"ignored": event.get("type")})
        await self.runtime.publisher.publish([Message(self.runtime.settings.topics.webhooks, batch_id, {
            "provider": provider, "batch_id": batch_id, "type": event["type"],
            "webhook_id": request.headers.get("webhook-id"), "at": time.time()}, 0)])
        metrics.webhooks.labels(provider, "accepted").inc()
        return web.json_response({"accepted": batch_id})

    def _verified(self, provider: str, body: bytes, headers: dict[str, str], secret: str) -> dict[str, Any]:
        if provider == "openai":
            if self._openai is None:
                import openai

                self._openai = openai.OpenAI(api_key="unused", webhook_secret=secret)
            event = self._openai.webhooks.unwrap(body, headers, secret=secret)
            return dict(event.model_dump())
        doc = Webhook(secret).verify(body, headers)
        if not isinstance(doc, dict):
            raise WebhookVerificationError("the payload is not a JSON object")
        return doc

    @Service.task
    async def _follow(self) -> None:
        """Every worker reads every verified webhook from the end of the topic on: the batch's follower acts."""
        if not self.secrets:
            return
        consumer = reader(self.runtime.settings.kafka, "webhooks")
        await consumer.start()
        try:
            partition = TopicPartition(self.runtime.settings.topics.webhooks, 0)
            consumer.assign([partition])
            await consumer.seek_to_end(partition)
            while not self.should_stop:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        self._woken(record.value)
        finally:
            await consumer.stop()

    def _woken(self, value: bytes | None) -> None:
        try:
            doc = orjson.loads(value or b"")
            provider, batch_id = doc["provider"], doc["batch_id"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            return  # not one of ours: nothing to wake
        if isinstance(provider, str) and isinstance(batch_id, str) and self._wake(provider, batch_id):
            log.info("webhook_woke_poll", provider=provider, batch_id=batch_id, type=doc.get("type"))


def _batch_id(provider: str, event: dict[str, Any]) -> str | None:
    """The provider's batch id the event is about: OpenAI's ``data.id``, Gemini's ``data.name`` (batches/...)."""
    data = event.get("data")
    if not isinstance(data, dict):
        return None
    found = data.get("id") if provider == "openai" else data.get("name") or data.get("batch")
    return found if isinstance(found, str) and found else None
