"""Fencing: a worker acts on its partitions only while the broker has lately confirmed that they are its own.

A member cut off from the broker, or frozen past the session timeout, is put out of the group and
its partitions are given to another member, but it hears so only once it reaches the coordinator
again: until then it is a zombie, and whatever it does then (create a batch, emit its results,
commit) is done twice. Kafka fences members with the group's generation: an offset commit carries
it, and the coordinator refuses the commit (``ILLEGAL_GENERATION``, ``UNKNOWN_MEMBER_ID``) once the
group has moved on. So every commit the broker accepts is a *confirmation* (the intake commits at
least every third of ``within_s``, the same offsets again if nothing moved), and:

- what cannot be undone waits for a confirmation younger than ``within_s``
  (``TIERLINE_CONFIRMED_WITHIN_S``). It is well under the session timeout: an act begun on a
  confirmation that old still reaches the provider or the broker before the group can have
  handed the partition to anyone else;
- past ``lost_after_s`` (the session timeout) without one, the partitions are taken to be lost
  without waiting to hear it from the group: by then the coordinator has put the member out.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from streams.settings import Settings

__all__ = ["Fence", "UNFENCED"]


class Fence:
    """When the broker last confirmed that this member's partitions are still its own."""

    def __init__(self, within_s: float, lost_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.within_s = within_s
        self.lost_after_s = lost_after_s
        self._clock = clock
        self._confirmed_at: float | None = None
        self._changed = asyncio.Event()

    @classmethod
    def of(cls, settings: Settings) -> Fence:
        """A consumer group member's fence, as the settings bound it."""
        return cls(settings.confirmed_within_s, settings.session_timeout_s)

    def confirm(self) -> None:
        """The broker has just accepted this member's generation (a commit, or joining the group)."""
        self._confirmed_at = self._clock()
        self._changed.set()
        self._changed = asyncio.Event()

    def withdraw(self) -> None:
        """The partitions are handed back or lost: nothing counts as confirmed until the next one."""
        self._confirmed_at = None

    def age(self) -> float | None:
        """Seconds since the last confirmation; None when there is none."""
        return None if self._confirmed_at is None else self._clock() - self._confirmed_at

    @property
    def fresh(self) -> bool:
        """Confirmed lately enough to act."""
        age = self.age()
        return age is not None and age <= self.within_s

    @property
    def due(self) -> bool:
        """Time to ask again: a third of ``within_s`` gone, so that a confirmation is fresh when needed."""
        age = self.age()
        return age is None or age >= self.within_s / 3

    @property
    def lost(self) -> bool:
        """Unconfirmed for longer than the group waits for a member: the partitions are another's now."""
        age = self.age()
        return age is not None and age > self.lost_after_s

    async def wait_fresh(self, still_wanted: Callable[[], bool], poll_s: float = 0.5) -> bool:
        """Wait for a fresh confirmation as long as ``still_wanted``; whether there is one."""
        while not self.fresh:
            if not still_wanted():
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), poll_s)
            except asyncio.TimeoutError:
                pass
        return still_wanted()


class _Unfenced(Fence):
    """Always confirmed: for what acts without a consumer group (the in-process tests, the commands)."""

    def __init__(self) -> None:
        super().__init__(float("inf"), float("inf"))

    @property
    def fresh(self) -> bool:
        return True


UNFENCED: Fence = _Unfenced()
