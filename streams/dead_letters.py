"""Dead letters: a message that can never be processed, kept with its reason, for an operator."""

from __future__ import annotations

from base64 import b64encode
from typing import Any

import orjson
import structlog

from schemas import DeadLetter
from streams import metrics
from streams.kafka.publish import Message

__all__ = ["dead_letter", "VALUE_MAX"]

log = structlog.get_logger(__name__)

#: A letter keeps the original value whole up to this size; past it, its first bytes and where the
#: whole of it stands (topic, partition, offset): base64 grows a value by a third, and a letter
#: must stay under the broker's message size (Kafka's default: 1 MB).
VALUE_MAX = 600_000


def dead_letter(topic: str, message: Any, reason: str, text: str) -> Message:
    """The letter for ``message`` (an aiokafka ConsumerRecord), to publish on ``topic``; counted and logged."""
    key, value = message.key, message.value or b""
    letter = DeadLetter(reason=reason, message=text, topic=message.topic, partition=message.partition,
                        offset=message.offset, key_b64=b64encode(key[:VALUE_MAX]).decode() if key is not None else None,
                        value_b64=b64encode(value[:VALUE_MAX]).decode(),
                        value_truncated=True if len(value) > VALUE_MAX else None)
    custom_id = key.decode(errors="replace")[:512] if key else ""
    metrics.dead_lettered.labels(reason).inc()
    log.warning("dead_lettered", reason=reason, topic=message.topic, partition=message.partition,
                offset=message.offset, custom_id=custom_id or None)
    return Message(topic, custom_id, orjson.dumps(letter), message.partition)
