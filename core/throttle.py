"""Requests and tokens per minute for one provider and model; pure, the clock is given.

Two token buckets, refilled continuously, each holding one second's worth (at least one
request): a steady flow rather than a burst at the top of every minute. A request may
take a bucket below zero once it is full, so a request larger than a second's tokens is
let through and the ones after it wait: the rate over a minute is the limit. A 429 or an
overload pauses everything until the provider's ``retry-after``.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["Throttle", "BURST_S"]

BURST_S = 1.0


class _Bucket:
    def __init__(self, per_minute: float, now: float, least: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(least, self.rate * BURST_S) if per_minute else 0.0
        self.level = self.capacity
        self._at = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self._at) * self.rate)
        self._at = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` may be taken: it fits, or the bucket is full."""
        need = min(amount, self.capacity)
        if not self.capacity or self.level >= need:
            return 0.0
        return (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        if self.capacity:
            self.level -= amount


class Throttle:
    def __init__(self, requests_per_minute: float, tokens_per_minute: float, clock: Callable[[], float]) -> None:
        """A limit of 0 is no limit."""
        now = clock()
        self._clock = clock
        self._requests = _Bucket(requests_per_minute, now, least=1.0)
        self._tokens = _Bucket(tokens_per_minute, now, least=0.0)
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
        self._requests.take(1)
        self._tokens.take(tokens)
        return 0.0

    def back_off(self, seconds: float) -> None:
        """The provider said to slow down: nothing goes for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
