"""Dead letters: a message that can never be processed, kept with its reason, for an operator."""

from __future__ import annotations

from base64 import b64encode
from typing import Any

import orjson
import structlog

from schemas import DeadLetter
from streams import metrics
from streams.kafka.publish import Message

__all__ = ["dead_letter", "KEY_MAX"]

log = structlog.get_logger(__name__)

#: A letter keeps the original key and value whole as long as the letter stays under the largest
#: record tierline writes (``TIERLINE_KAFKA_MAX_RECORD_BYTES``): base64 grows them by a third, and
#: the letter's own fields take some room. Past that, their first bytes and where the whole of
#: the message stands (topic, partition, offset).
KEY_MAX = 4_096
LETTER_FIELDS = 8_192  # reason, message, topic and the rest


def dead_letter(topic: str, message: Any, reason: str, text: str, max_bytes: int = 1_000_000) -> Message:
    """The letter for ``message`` (an aiokafka ConsumerRecord), to publish on ``topic``; counted and logged."""
    key, value = message.key, message.value or b""
    room = (max_bytes - LETTER_FIELDS) * 3 // 4
    kept_key = key[:KEY_MAX] if key is not None else None
    kept_value = value[:room - len(kept_key or b"")]
    letter = DeadLetter(reason=reason, message=text[:2_000], topic=message.topic, partition=message.partition,
                        offset=message.offset, key_b64=b64encode(kept_key).decode() if kept_key is not None else None,
                        value_b64=b64encode(kept_value).decode(),
                        value_truncated=True if len(kept_value) < len(value) or kept_key != key else None)
    custom_id = key.decode(errors="replace")[:512] if key else ""
    metrics.dead_lettered.labels(reason).inc()
    log.warning("dead_lettered", reason=reason, topic=message.topic, partition=message.partition,
                offset=message.offset, custom_id=custom_id or None)
    return Message(topic, custom_id, orjson.dumps(letter), message.partition)
