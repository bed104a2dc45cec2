"""Which consumed offsets are safe to commit.

An offset is committed only when every item at or before it is done with: dead
lettered, skipped as a duplicate, or inside a batch the provider has accepted.
Items still in open batches or waiting out a retry delay hold the commit back,
so a crash replays them instead of losing them.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from typing import Hashable

__all__ = ["PendingOffsets"]


class PendingOffsets:
    """Per partition: offsets consumed but not finished, and the commit watermark."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, set[int]] = defaultdict(set)
        self._heaps: dict[Hashable, list[int]] = defaultdict(list)
        self._consumed: dict[Hashable, int] = {}

    def consumed(self, tp: Hashable, offset: int) -> None:
        """``offset`` was read (whatever becomes of it)."""
        if offset >= self._consumed.get(tp, -1):
            self._consumed[tp] = offset

    def hold(self, tp: Hashable, offset: int) -> None:
        """``offset`` must not be committed past until ``release``."""
        if offset not in self._pending[tp]:
            self._pending[tp].add(offset)
            heapq.heappush(self._heaps[tp], offset)

    def last_consumed(self, tp: Hashable) -> int | None:
        return self._consumed.get(tp)

    def rewind(self, tp: Hashable, offset: int) -> None:
        """Reading starts again at ``offset``: nothing from there on counts as read (what is held stays held)."""
        if tp in self._consumed:
            self._consumed[tp] = min(self._consumed[tp], offset - 1)

    def release(self, tp: Hashable, offset: int) -> None:
        self._pending[tp].discard(offset)

    def forget(self, tp: Hashable) -> None:
        """The partition was taken away: nothing of it is ours to commit any more."""
        self._pending.pop(tp, None)
        self._heaps.pop(tp, None)
        self._consumed.pop(tp, None)

    def committable(self) -> dict[Hashable, int]:
        """For each partition, the next offset to consume after a restart."""
        out: dict[Hashable, int] = {}
        for tp, last in self._consumed.items():
            heap, pending = self._heaps[tp], self._pending[tp]
            while heap and heap[0] not in pending:
                heapq.heappop(heap)
            out[tp] = heap[0] if heap else last + 1
        return out

    def held(self) -> int:
        return sum(len(p) for p in self._pending.values())
