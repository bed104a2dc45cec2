"""Requests and tokens per minute for one provider and model; pure, the clock is given.

Two token buckets, refilled continuously, each holding at most one minute's worth:
a steady flow rather than a burst at the top of every minute. A request larger than
a whole minute's tokens goes once the bucket is full, so that it is slow rather than
never. A 429 or an overload pauses everything until the provider's ``retry-after``.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["Throttle"]


class _Bucket:
    def __init__(self, per_minute: float, now: float) -> None:
        self.capacity = per_minute
        self.level = per_minute
        self._at = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self._at) * self.capacity / 60.0)
        self._at = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` fits (a full bucket always fits)."""
        if not self.capacity or self.level >= min(amount, self.capacity):
            return 0.0
        return (min(amount, self.capacity) - self.level) * 60.0 / self.capacity


class Throttle:
    def __init__(self, requests_per_minute: float, tokens_per_minute: float, clock: Callable[[], float]) -> None:
        """A limit of 0 is no limit."""
        now = clock()
        self._clock = clock
        self._requests = _Bucket(requests_per_minute, now)
        self._tokens = _Bucket(tokens_per_minute, now)
        self._paused_until = now

    def reserve(self, tokens: int) -> float:
        """Take room for one request of ``tokens`` and return 0.0, or return the seconds to wait first."""
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        self._requests.refill(now)
        self._tokens.refill(now)
        wait = max(self._requests.wait_for(1), self._tokens.wait_for(tokens))
        if wait:
            return wait
        self._requests.level -= 1 if self._requests.capacity else 0
        self._tokens.level -= tokens if self._tokens.capacity else 0
        return 0.0

    def back_off(self, seconds: float) -> None:
        """The provider said to slow down: nothing goes for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
