"""Records on tierline's topics: the public contract with producers and consumers."""

from schemas.events import (
    ALERT_KINDS,
    Alert,
    AlertKind,
    AsyncItem,
    PendingCallback,
    BatchProgress,
    BatchRecord,
    DeadLetter,
    ErrorInfo,
    FailureEvent,
    HELD_FOR_QUEUE,
    ResultEvent,
    RetryItem,
    WorkItem,
    RunKey,
    run_key,
)

__all__ = [
    "ALERT_KINDS",
    "Alert",
    "AlertKind",
    "AsyncItem",
    "PendingCallback",
    "BatchProgress",
    "BatchRecord",
    "DeadLetter",
    "ErrorInfo",
    "FailureEvent",
    "HELD_FOR_QUEUE",
    "ResultEvent",
    "RetryItem",
    "WorkItem",
    "RunKey",
    "run_key",
]
