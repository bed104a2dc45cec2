"""Alerts: what an operator must look at, on ``tierline.alerts`` and in the log."""

from __future__ import annotations

import time

import structlog

from schemas import Alert, BatchRecord
from streams import metrics
from streams.kafka.publish import Message
from streams.runtime import Runtime

__all__ = ["alert"]

log = structlog.get_logger(__name__)


async def alert(runtime: Runtime, record: BatchRecord, kind: str, message: str,
                seconds: float | None = None) -> None:
    """An event on ``tierline.alerts`` and a log line with the same fields."""
    event = Alert(kind=kind, batch_key=record.batch_key, provider=record.provider, batch_id=record.batch_id,
                  message=message, at=time.time(), seconds=seconds)
    metrics.alert.labels(kind).inc()
    log.warning("alert", kind=kind, batch_key=record.batch_key, batch_id=record.batch_id,
                provider=record.provider, message=message)
    await runtime.publisher.publish([Message(runtime.settings.topics.alerts, record.batch_key, event)])
