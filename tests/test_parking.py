"""Which waiting retries are parked: those that wait long and hold back a record that is not waiting itself."""

from __future__ import annotations

from core.parking import to_park

NOW = 1_800_000_000.0


def test_a_long_wait_ahead_of_other_work_is_parked_and_a_short_one_is_not() -> None:
    waiting = [(NOW + 3000, 10), (NOW + 30, 11), (NOW + 900, 14)]
    assert to_park(waiting, consumed_to=20, now=NOW, min_wait_s=300) == {10, 14}


def test_nothing_is_parked_when_only_waiting_retries_are_held_back() -> None:
    assert to_park([(NOW + 3000, 10), (NOW + 3000, 11), (NOW + 30, 12)], consumed_to=12, now=NOW,
                   min_wait_s=300) == set()
    assert to_park([(NOW + 3000, 10), (NOW + 3000, 11)], consumed_to=12, now=NOW, min_wait_s=300) == {10, 11}


def test_nothing_is_parked_when_every_wait_is_short() -> None:
    assert to_park([(NOW + 299, 1), (NOW + 10, 2)], consumed_to=100, now=NOW, min_wait_s=300) == set()
    assert to_park([], consumed_to=100, now=NOW, min_wait_s=300) == set()
