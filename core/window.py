"""Accumulate items into open batches, one per group, and say when each closes.

A batch closes when it reaches its item or byte cap, or when its first item has
waited ``max_wait_s``. A batch with fewer items than its provider accepts (Bedrock's
minimum records per job) stays open past that, so later items pad it, for up to
``underfilled_wait_s`` more; then it closes as ``below_minimum``, never to be
submitted. A ``custom_id`` that is already in the open batch of its group is
collapsed into the first one. The clock is injected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from core.limits import BatchGroup, Caps

__all__ = ["OpenBatch", "BatchWindow", "Placement"]


@dataclass(slots=True)
class OpenBatch:
    """A batch still taking items."""

    key: str
    group: BatchGroup
    opened_at: float
    ids: set[str] = field(default_factory=set)
    size_bytes: int = 0
    close_reason: str | None = None

    @property
    def count(self) -> int:
        return len(self.ids)


@dataclass(slots=True)  # not frozen: made per item, and a frozen __init__ takes 5 times as long
class Placement:
    """Where ``add`` put an item (``batch_key`` None: collapsed) and what it closed."""

    batch_key: str | None
    closed: list[OpenBatch]


class BatchWindow:
    """Open batches per group, closing on caps and on maximum wait."""

    def __init__(
        self,
        caps_for: Callable[[str], Caps],
        max_wait_s: float,
        clock: Callable[[], float],
        new_key: Callable[[BatchGroup], str],
        underfilled_wait_s: float = 0.0,
    ) -> None:
        self._caps_for = caps_for
        self._max_wait_s = max_wait_s
        self._underfilled_wait_s = underfilled_wait_s
        self._clock = clock
        self._new_key = new_key
        self._open: dict[BatchGroup, OpenBatch] = {}

    def add(self, group: BatchGroup, custom_id: str, size_bytes: int) -> Placement:
        """Place one item of ``size_bytes`` (its line in the provider's input)."""
        closed: list[OpenBatch] = []
        caps = self._caps_for(group.provider)
        batch = self._open.get(group)
        if batch is not None:
            if custom_id in batch.ids:
                return Placement(None, closed)
            if batch.size_bytes + size_bytes > caps.max_bytes:
                closed.append(self._close(group, "max_bytes"))
                batch = None
        if batch is None:
            batch = OpenBatch(self._new_key(group), group, self._clock())
            self._open[group] = batch
        batch.ids.add(custom_id)
        batch.size_bytes += size_bytes
        if batch.count >= caps.max_items:
            closed.append(self._close(group, "max_items"))
        elif batch.size_bytes >= caps.max_bytes:
            closed.append(self._close(group, "max_bytes"))
        return Placement(batch.key, closed)

    def due(self) -> list[OpenBatch]:
        """Close and return every batch whose first item has waited long enough."""
        now = self._clock()
        late = [g for g, b in self._open.items() if now >= self._deadline(b)]
        return [self._close(g, "max_wait" if self._filled(g, self._open[g]) else "below_minimum") for g in late]

    def next_deadline(self) -> float | None:
        """When the next open batch is due, or None if none is open."""
        return min((self._deadline(b) for b in self._open.values()), default=None)

    def _filled(self, group: BatchGroup, batch: OpenBatch) -> bool:
        return batch.count >= self._caps_for(group.provider).min_items

    def _deadline(self, batch: OpenBatch) -> float:
        extra = 0.0 if self._filled(batch.group, batch) else self._underfilled_wait_s
        return batch.opened_at + self._max_wait_s + extra

    def open_batches(self) -> list[OpenBatch]:
        return list(self._open.values())

    def _close(self, group: BatchGroup, reason: str) -> OpenBatch:
        batch = self._open.pop(group)
        batch.close_reason = reason
        return batch
