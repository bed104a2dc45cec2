"""Requests and tokens per minute, on an injected clock."""

from __future__ import annotations

import pytest

from core.throttle import Throttle
from tests.clock import Clock


def admitted_over(throttle: Throttle, clock: Clock, seconds: float, tokens: int = 1) -> int:
    """How many requests go in ``seconds`` when each is tried as soon as it may go."""
    count, end = 0, clock.now + seconds
    while clock.now < end:
        wait = throttle.reserve(tokens)
        if wait:
            clock.now += wait
        else:
            count += 1
    return count


def test_requests_flow_steadily_at_the_limit_rather_than_in_bursts() -> None:
    clock = Clock(0.0)
    throttle = Throttle(requests_per_minute=120, tokens_per_minute=0, clock=clock)
    assert throttle.reserve(1) == 0.0 and throttle.reserve(1) == 0.0  # a second's worth at once...
    assert throttle.reserve(1) == pytest.approx(0.5)  # ...then one every half second
    clock.now = 600.0  # idle for long: still no more than a second's worth stored
    assert sum(throttle.reserve(1) == 0.0 for _ in range(10)) == 2
    assert admitted_over(throttle, clock, 60.0) == pytest.approx(120, abs=2)


def test_tokens_per_minute_hold_back_large_requests_to_the_limit_on_average() -> None:
    clock = Clock(0.0)
    throttle = Throttle(requests_per_minute=0, tokens_per_minute=6_000, clock=clock)  # 100 a second
    assert throttle.reserve(5_000) == 0.0  # larger than a second's worth: goes, the bucket goes below zero
    assert throttle.reserve(50) == pytest.approx(49.5)  # 4,900 below zero, up to 50, at 100 a second
    clock.now = 49.5
    assert throttle.reserve(50) == 0.0
    assert admitted_over(throttle, clock, 600.0, tokens=1_000) == pytest.approx(60, abs=2)


def test_a_429_pauses_everything_for_its_retry_after() -> None:
    clock = Clock(0.0)
    throttle = Throttle(0, 0, clock)
    throttle.back_off(7.0)
    assert throttle.reserve(1) == 7.0
    clock.now = 7.0
    assert throttle.reserve(1) == 0.0
