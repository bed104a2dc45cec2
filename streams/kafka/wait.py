"""Waiting out a Kafka that does not answer, for a command with a user watching (``tierline submit``).

A broker restarting, or a managed cluster rolling its nodes, is away for seconds to a minute:
a command says so once, tries again, and gives up (``KafkaAway``) only when it has been away for
the whole wait. A failure that waiting cannot mend (a refused login, an untrusted certificate, a
missing topic) is raised at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, TypeVar

from streams.kafka.connection import KafkaConnection
from streams.kafka.diagnose import diagnose

__all__ = ["KafkaAway", "Absence", "once_kafka_answers"]

T = TypeVar("T")

#: How often an absent Kafka is tried again.
RETRY_S = 2.0


class KafkaAway(Exception):
    """Nothing answered at the broker's address for the whole wait."""

    def __init__(self, reason: str, waited_s: float) -> None:
        super().__init__(f"Kafka did not answer for {waited_s:.0f} s: {reason}")
        self.reason, self.waited_s = reason, waited_s


class Absence:
    """How long Kafka has been away, and what to say of it: pure, on an injected clock."""

    def __init__(self, wait_s: float, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.wait_s, self._say, self._clock = wait_s, say, clock
        self._since: float | None = None

    @property
    def away(self) -> bool:
        return self._since is not None

    def failed(self, reason: str) -> None:
        """Kafka did not answer now: say so the first time; raise ``KafkaAway`` once the wait is over."""
        now = self._clock()
        if self._since is None:
            self._since = now
            self._say(f"waiting up to {self.wait_s:g} s for Kafka: {reason}")
        elif now - self._since >= self.wait_s:
            raise KafkaAway(reason, now - self._since)

    def answered(self) -> None:
        """Kafka answered: if it had been away, say it is back."""
        if self._since is not None:
            self._say(f"Kafka answers again, after {self._clock() - self._since:.0f} s away")
            self._since = None


async def once_kafka_answers(kafka: KafkaConnection, attempt: Callable[[], Awaitable[T]], absence: Absence) -> T:
    """``attempt()``'s value, tried again every ``RETRY_S`` while nothing answers at the broker's address."""
    while True:
        try:
            value = await attempt()
        except Exception as exc:
            found = await diagnose(kafka, exc)
            if not found.away:
                raise
            absence.failed(found.reason)
            await asyncio.sleep(RETRY_S)
        else:
            absence.answered()
            return value
