"""Which failures deserve another attempt, and when.

Retryable failures are those that say nothing about the request itself: the
batch expired or was cancelled, the provider was rate limited, overloaded or
failed on its side. Everything else (an invalid request) is final at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

__all__ = ["RetryPolicy", "RetryDecision", "is_retryable", "PollBackoff", "CANCELLED_ERROR_TYPES"]

RETRYABLE_ERROR_TYPES = frozenset(
    {
        # Anthropic result types and error types
        "expired",
        "canceled",
        "rate_limit_error",
        "overloaded_error",
        "api_error",
        "timeout_error",
        # OpenAI batch error codes and error types
        "batch_expired",
        "batch_cancelled",
        "rate_limit_exceeded",
        "server_error",
        "internal_error",
        # Bedrock's record error codes
        "ThrottlingException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "ServiceUnavailableException",
        "InternalServerException",
        # tierline's own: the provider ended the batch without a line for the item
        "missing_result",
    }
)


#: What an item of a cancelled batch that never ran says, per provider (Anthropic, OpenAI).
CANCELLED_ERROR_TYPES = frozenset({"canceled", "batch_cancelled"})


def is_retryable(error_type: str, status_code: int | None = None) -> bool:
    """True when the same request may well succeed if sent again later."""
    if status_code is not None and (status_code in (408, 409, 429) or status_code >= 500):
        return True
    return error_type in RETRYABLE_ERROR_TYPES


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """``retry``: send the item again, not before ``not_before``; otherwise it is final."""

    retry: bool
    not_before: float | None = None

    @property
    def final(self) -> bool:
        return not self.retry


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff over a bounded number of attempts."""

    max_attempts: int = 3
    base_delay_s: float = 30.0
    max_delay_s: float = 3600.0

    def delay(self, attempt: int) -> float:
        """How long to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))

    def decide(self, attempt: int, retryable: bool, now: float) -> RetryDecision:
        if retryable and attempt < self.max_attempts:
            return RetryDecision(True, now + self.delay(attempt))
        return RetryDecision(False)


@dataclass(slots=True)
class PollBackoff:
    """Polling intervals that grow while a batch's status stays the same.

    ``jitter`` spreads each interval by up to that share either way (``rand`` gives 0 to 1): batches
    submitted together would otherwise be polled together, in waves, for as long as they run."""

    initial_s: float = 5.0
    maximum_s: float = 300.0
    factor: float = 1.5
    jitter: float = 0.0
    rand: Callable[[], float] = random.random
    _current: float = 0.0
    _last_status: object = None

    def next_interval(self, status: object) -> float:
        """The wait before the next poll, given the status just seen."""
        if status != self._last_status or self._current == 0.0:
            self._current = self.initial_s
            self._last_status = status
        else:
            self._current = min(self.maximum_s, self._current * self.factor)
        return self._current * (1 + self.jitter * (2 * self.rand() - 1))
