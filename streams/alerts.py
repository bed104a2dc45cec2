"""Alerts: what an operator must look at, on ``tierline.alerts`` and in the log."""

from __future__ import annotations

import structlog

from schemas import Alert, AlertKind, BatchRecord
from streams import metrics
from streams.kafka.publish import Message
from streams.runtime import Runtime

__all__ = ["alert", "alert_about", "alert_or_log"]

log = structlog.get_logger(__name__)


async def alert(runtime: Runtime, record: BatchRecord, kind: AlertKind, message: str,
                seconds: float | None = None) -> None:
    """An event on ``tierline.alerts`` and a log line with the same fields."""
    await alert_about(runtime, record.batch_key, record.provider, record.batch_id, kind, message, seconds)


async def alert_or_log(runtime: Runtime, record: BatchRecord, kind: AlertKind, message: str) -> None:
    """``alert``, for a caller that must go on whatever happens: one that cannot be published (the broker away) is
    in the log already."""
    try:
        await alert(runtime, record, kind, message)
    except Exception:  # noqa: BLE001
        log.exception("alert_not_published", kind=kind, batch_key=record.batch_key)


async def alert_about(runtime: Runtime, batch_key: str, provider: str, batch_id: str | None, kind: AlertKind,
                      message: str, seconds: float | None = None) -> None:
    event = Alert(kind=kind, batch_key=batch_key, provider=provider, batch_id=batch_id, message=message,
                  at=runtime.clock(), seconds=seconds)
    metrics.alert.labels(kind, provider).inc()
    log.warning("alert", kind=kind, batch_key=batch_key, batch_id=batch_id, provider=provider, message=message)
    await runtime.publisher.publish([Message(runtime.settings.topics.alerts, batch_key, event)])
