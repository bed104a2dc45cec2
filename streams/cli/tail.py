"""``tierline tail TOPIC``: a public topic's events, one readable line each, for debugging."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

import orjson
from aiokafka import AIOKafkaConsumer

from core.cost import usage_tokens
from streams.kafka.topics import require_topics
from streams.settings import Settings

__all__ = ["describe", "tail"]


def describe(topic: str, event: dict[str, Any]) -> str:
    """The fields that matter for the topic, as ``name=value`` pairs."""
    cid = event.get("custom_id", "")
    if topic == "results":
        tokens = usage_tokens(event.get("usage"))
        return (f"{cid}  {event.get('provider')} batch={event.get('batch_id')} attempt={event.get('attempt')} "
                f"tokens={tokens[0]}+{tokens[1]}  {_text(event.get('response') or {})!r}")
    if topic == "failures":
        error = event.get("error") or {}
        fate = "final" if event.get("final") else "will retry"
        return (f"{cid}  {event.get('provider')} attempt={event.get('attempt')} {fate}  "
                f"{error.get('type')}: {_short(error.get('message') or '')}")
    if topic == "deadletter":
        return f"{event.get('reason')}  {_short(event.get('message') or '')}  (offset {event.get('offset')})"
    if topic == "alerts":
        return f"{event.get('kind')}  {event.get('provider')} batch={event.get('batch_id')}  {event.get('message')}"
    if topic == "retry":
        not_before = _when(event.get("not_before"))
        return f"{cid}  {event.get('provider')} attempt={event.get('attempt')} not_before={not_before}"
    return f"{cid}  {event.get('provider')} model={(event.get('params') or {}).get('model')}"


async def tail(settings: Settings, topic: str, custom_id: str | None, from_beginning: bool, limit: int | None,
               raw: bool, write: Callable[[str], None], idle_s: float | None = None) -> int:
    """Print the topic's events (only ``custom_id``'s, if given); return how many were printed."""
    await require_topics(settings, topic)  # subscribing to a missing topic would have the broker create it
    name = settings.topics.named(topic)
    consumer = AIOKafkaConsumer(name, **settings.kafka.options("tail"), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest" if from_beginning else "latest")
    await consumer.start()
    shown, last_seen = 0, time.monotonic()
    try:
        while limit is None or shown < limit:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch and idle_s is not None and time.monotonic() - last_seen >= idle_s:
                break
            for records in batch.values():
                for record in records:
                    last_seen = time.monotonic()
                    if custom_id is not None and (record.key or b"").decode(errors="replace") != custom_id:
                        continue
                    write(_line(topic, record, raw))
                    shown += 1
                    if limit is not None and shown >= limit:
                        return shown
    finally:
        await consumer.stop()
    return shown


def _line(topic: str, record: Any, raw: bool) -> str:
    value = record.value or b""
    if raw:
        return value.decode(errors="replace")
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return f"{_when(record.timestamp / 1000)}  p{record.partition}@{record.offset}  (not JSON) {value[:80]!r}"
    body = describe(topic, event) if isinstance(event, dict) else repr(event)[:120]
    return f"{_when(record.timestamp / 1000)}  p{record.partition}@{record.offset}  {body}"


def _text(response: dict[str, Any]) -> str:
    """The first words of an answer, whichever provider's shape it has."""
    for block in response.get("content") or []:  # Anthropic
        if isinstance(block, dict) and block.get("type") == "text":
            return _short(block.get("text", ""))
    for choice in response.get("choices") or []:  # OpenAI chat
        return _short(((choice or {}).get("message") or {}).get("content") or "")
    message = (response.get("output") or {}).get("message") or {}  # Bedrock Converse
    for block in message.get("content") or []:
        if isinstance(block, dict) and "text" in block:
            return _short(block["text"])
    if response.get("data"):  # embeddings
        return f"{len(response['data'])} embedding(s)"
    return ""


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
