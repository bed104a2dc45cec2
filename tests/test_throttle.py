"""Requests and tokens per minute, on an injected clock."""

from __future__ import annotations

import pytest

from core.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_requests_flow_steadily_at_the_limit_rather_than_in_bursts() -> None:
    clock = Clock()
    throttle = Throttle(requests_per_minute=60, tokens_per_minute=0, clock=clock)
    assert all(throttle.reserve(100) == 0.0 for _ in range(60))  # a minute's worth at once, then...
    assert throttle.reserve(100) == pytest.approx(1.0)  # ...one a second
    clock.now = 1.0
    assert throttle.reserve(100) == 0.0
    clock.now = 600.0  # idle for long: still at most a minute's worth stored
    assert sum(throttle.reserve(1) == 0.0 for _ in range(100)) == 60


def test_tokens_per_minute_hold_back_large_requests() -> None:
    clock = Clock()
    throttle = Throttle(requests_per_minute=0, tokens_per_minute=6_000, clock=clock)
    assert throttle.reserve(5_000) == 0.0
    assert throttle.reserve(3_000) == pytest.approx(20.0)  # 2,000 short at 100 a second
    clock.now = 20.0
    assert throttle.reserve(3_000) == 0.0
    clock.now = 200.0
    assert throttle.reserve(50_000) == 0.0  # larger than a minute: goes once the bucket is full


def test_a_429_pauses_everything_for_its_retry_after() -> None:
    clock = Clock()
    throttle = Throttle(0, 0, clock)
    throttle.back_off(7.0)
    assert throttle.reserve(1) == 7.0
    clock.now = 7.0
    assert throttle.reserve(1) == 0.0
