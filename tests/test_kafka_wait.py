"""Waiting out an absent Kafka (``streams.kafka.wait``): said once, said when it is back, given up
only when it has been away for the whole wait; on an injected clock."""

from __future__ import annotations

import pytest

from streams.kafka.wait import Absence, KafkaAway
from tests.clock import Clock


def test_an_absence_is_said_once_and_its_end_with_how_long_it_lasted() -> None:
    clock, said = Clock(100.0), []
    absence = Absence(60, said.append, clock)
    absence.answered()
    assert said == [] and not absence.away
    absence.failed("nothing answers at k:9092")
    clock.now += 20
    absence.failed("nothing answers at k:9092")
    assert said == ["waiting up to 60 s for Kafka: nothing answers at k:9092"] and absence.away
    clock.now += 25
    absence.answered()
    assert said[1:] == ["Kafka answers again, after 45 s away"] and not absence.away


def test_away_for_the_whole_wait_gives_up_saying_why() -> None:
    clock = Clock(100.0)
    absence = Absence(60, lambda _: None, clock)
    absence.failed("nothing answers at k:9092")
    clock.now += 59
    absence.failed("nothing answers at k:9092")
    clock.now += 1
    with pytest.raises(KafkaAway) as away:
        absence.failed("nothing answers at k:9092")
    assert str(away.value) == "Kafka did not answer for 60 s: nothing answers at k:9092"


def test_a_new_absence_gets_a_whole_wait_of_its_own() -> None:
    clock = Clock(100.0)
    absence = Absence(60, lambda _: None, clock)
    absence.failed("down")
    clock.now += 50
    absence.answered()
    clock.now += 5
    absence.failed("down")
    clock.now += 50
    absence.failed("down")  # 50 s into the second absence, not 105 s into the first
