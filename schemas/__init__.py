"""Records on tierline's topics: the public contract with producers and consumers."""

from schemas.events import (
    Alert,
    BatchProgress,
    BatchRecord,
    DeadLetter,
    ErrorInfo,
    FailureEvent,
    ResultEvent,
    RetryItem,
    WorkItem,
    run_key,
)

__all__ = [
    "Alert",
    "BatchProgress",
    "BatchRecord",
    "DeadLetter",
    "ErrorInfo",
    "FailureEvent",
    "ResultEvent",
    "RetryItem",
    "WorkItem",
    "run_key",
]
