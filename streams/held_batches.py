"""Closed batches waiting for room in the daily budget, released in order.

Without ``TIERLINE_DAILY_BUDGET_USD`` a batch is released as soon as it closes. With it, the first held
batch asks the budget every worker shares (``streams.state.budget``) for its estimate, one at a time;
granted, and still this worker's, it is released, and the next one asks. Refused, it stays first (said
once, ``batch_held``) until actual costs, settling under their estimates, free some room.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable

import structlog
from aiokafka import TopicPartition

from providers.base import SpooledBatch
from streams import metrics
from streams.runtime import Runtime

__all__ = ["Held", "HeldBatches"]

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Held:
    """A closed batch, spooled, not yet durable: its earliest input offset per partition (which hold the
    commit back), its estimated cost, its earliest deadline, and its last input offset per partition."""

    spooled: SpooledBatch
    offsets: dict[TopicPartition, int]
    estimated_usd: float
    deadline: float | None = None
    logged: bool = False  # its wait for room has been said
    last: dict[TopicPartition, int] = field(default_factory=dict)

    def sources(self) -> list[tuple[str, int, int]]:
        """Where its items were read, for the batch's record (``BatchRecord.sources``)."""
        return [(tp.topic, tp.partition, offset) for tp, offset in sorted(self.last.items())]


class HeldBatches:
    """``release(held, budget_day)`` is called for each batch the budget has room for, in order."""

    def __init__(self, runtime: Runtime, release: Callable[[Held, int], None]) -> None:
        self.runtime = runtime
        self._release = release
        self._held: list[Held] = []
        self._reserving: asyncio.Task[None] | None = None  # the first held batch asking the shared budget

    def __len__(self) -> int:
        return len(self._held)

    def add(self, held: Held) -> None:
        self._held.append(held)
        self.release()

    def release(self) -> None:
        """Release what the budget has room for (all, without one); ask the shared budget for the first."""
        budget = self.runtime.budget
        if not budget.limit_usd:
            while self._held:
                self._release(self._held.pop(0), budget.today())
            return
        if not self._held or self._reserving is not None:
            return
        first = self._held[0]
        if budget.fits(first.estimated_usd):
            self._reserving = asyncio.create_task(self._reserve(first, self.runtime.ownership.generation))
        elif not first.logged:
            first.logged = True
            metrics.batch_held.inc()
            log.warning("batch_held", batch_key=first.spooled.key, items=first.spooled.count,
                        estimated_usd=round(first.estimated_usd, 4), spent_today_usd=round(budget.spent(), 4),
                        daily_budget_usd=budget.limit_usd, held_batches=len(self._held),
                        held_items=sum(h.spooled.count for h in self._held))

    def drop(self) -> list[str]:
        """Forget every held batch (their partitions handed back: their items are read again); their keys."""
        keys = [held.spooled.key for held in self._held]
        self._held.clear()
        return keys

    def stop(self) -> None:
        if self._reserving is not None:
            self._reserving.cancel()

    async def _reserve(self, held: Held, generation: int) -> None:
        """Ask the shared budget for the first held batch's estimate; release it if granted and still ours."""
        budget, day = self.runtime.budget, self.runtime.budget.today()
        try:
            granted = await self.runtime.spend.reserve(held.spooled.key, day, held.estimated_usd)
        except Exception as exc:  # noqa: BLE001 - no answer is no grant: asked again in a later round
            log.warning("budget_unreachable", batch_key=held.spooled.key, error=str(exc))
            granted = False
        finally:
            self._reserving = None
        if not granted:
            return  # another worker's batch took the room first: held until actual costs free some
        if not (self._held and self._held[0] is held and self.runtime.ownership.current(generation)):
            return  # handed back meanwhile: its items are read again (the grant counts, on the safe side)
        self._held.pop(0)
        if held.logged:
            log.info("batch_released", batch_key=held.spooled.key, estimated_usd=round(held.estimated_usd, 4),
                     spent_today_usd=round(budget.spent(), 4))
        self._release(held, day)
        self.release()
