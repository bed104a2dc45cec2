"""Batch ownership: which batches this worker answers for, in which generation, and what a rebalance waits for.

The *generation* is bumped whenever partitions are taken away: a batch job of an older
generation belongs to whoever owns its home partition now, and is dropped. Provider calls
that create a batch and the emission of a batch's results run as *critical sections*,
which a rebalance waits for, so that two workers never create or settle the same batch at
once; they are entered only while the broker has lately confirmed that the partitions are
still this worker's (``acting``, ``streams.kafka.fence``), so that a worker cut off from the
group does not act on what another now owns. The batches owned are those in hand in the
current generation (not to be resumed again), each with the time it was taken: the
in-flight batches of the metrics.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

from streams.kafka.fence import UNFENCED, Fence

__all__ = ["Ownership"]


class Ownership:
    """One worker's batches, the tasks following them, and its generation, fenced by ``fence``."""

    def __init__(self, fence: Fence = UNFENCED) -> None:
        self.generation = 0
        self.fence = fence
        self._owned: dict[str, float] = {}
        self._followers: set[asyncio.Task[None]] = set()
        self._critical: set[asyncio.Future[None]] = set()

    def current(self, generation: int) -> bool:
        """Whether a job made in ``generation`` is still this worker's."""
        return generation == self.generation

    def holds(self, generation: int) -> bool:
        """Still this worker's, as the broker lately confirmed: safe to act on now."""
        return generation == self.generation and self.fence.fresh

    def claim(self, batch_key: str, since: float) -> None:
        self._owned[batch_key] = since

    def release(self, batch_key: str) -> None:
        self._owned.pop(batch_key, None)

    def owns(self, batch_key: str) -> bool:
        return batch_key in self._owned

    def in_flight(self) -> int:
        return len(self._owned)

    def oldest(self) -> float | None:
        """When the longest-held batch was taken, if any."""
        return min(self._owned.values(), default=None)

    def follow(self, task: asyncio.Task[None]) -> None:
        """A task following a batch: cancelled when the batch is handed back."""
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    def begin(self) -> Callable[[], None]:
        """Begin a critical section now; calling what this returns ends it. For work handed to a task:
        a rebalance that comes before the task first runs must wait for it too."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._critical.add(done)

        def end() -> None:
            self._critical.discard(done)
            if not done.done():
                done.set_result(None)

        return end

    @asynccontextmanager
    async def critical(self) -> AsyncIterator[None]:
        """A section a rebalance waits for instead of interrupting."""
        end = self.begin()
        try:
            yield
        finally:
            end()

    @asynccontextmanager
    async def acting(self, generation: int) -> AsyncIterator[bool]:
        """A critical section for a job of ``generation``, entered once the broker has lately confirmed the
        partitions (waiting for that outside the section: a rebalance does not wait for the wait). Yields
        whether the job is still this worker's to act on; if not, the section does nothing."""
        await self.fence.wait_fresh(lambda: self.current(generation))
        async with self.critical():
            yield self.holds(generation)

    async def hand_back(self, timeout_s: float = 60.0) -> None:
        """Partitions are being taken away: finish critical sections, stop following batches."""
        self.generation += 1
        self._owned.clear()
        if self._critical:
            await asyncio.wait(list(self._critical), timeout=timeout_s)
        self.stop_following()

    def stop_following(self) -> None:
        for task in list(self._followers):
            task.cancel()
