"""Retries read before their ``not_before``, waiting in the window agent until they are due; pure.

Each holds its record's offset back from the commit while it waits (the agent's ``PendingOffsets``);
``core.parking`` says which of them to write again at the end of their partition so that the commit
can pass the work behind them.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from core.validation import Accepted
from schemas import RetryItem

__all__ = ["Waiting", "WaitingRetries"]


@dataclass(order=True, slots=True)
class Waiting:
    """A retry waiting out its ``not_before``, read from ``source`` (topic, partition) at ``offset`` (a record
    written at ``timestamp_ms``). Ordered by when it is due, then by when it was read."""

    not_before: float
    sequence: int
    retry: RetryItem = field(compare=False)
    accepted: Accepted = field(compare=False)  # its provider line, checked
    source: tuple[str, int] = field(compare=False)  # the TopicPartition it was read from
    offset: int = field(compare=False)
    timestamp_ms: int = field(compare=False)


class WaitingRetries:
    """The waiting retries, soonest due first."""

    def __init__(self) -> None:
        self._heap: list[Waiting] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, retry: RetryItem, accepted: Accepted, source: tuple[str, int], offset: int,
            timestamp_ms: int) -> None:
        heapq.heappush(self._heap, Waiting(retry.not_before, next(self._sequence), retry, accepted, source, offset,
                                           timestamp_ms))

    @property
    def next_due(self) -> float | None:
        return self._heap[0].not_before if self._heap else None

    def due(self, now: float) -> Iterator[Waiting]:
        """Take out, soonest first, every retry due by ``now``."""
        while self._heap and self._heap[0].not_before <= now:
            yield heapq.heappop(self._heap)

    def by_source(self) -> dict[tuple[str, int], list[Waiting]]:
        grouped: defaultdict[tuple[str, int], list[Waiting]] = defaultdict(list)
        for waiting in self._heap:
            grouped[waiting.source].append(waiting)
        return grouped

    def remove(self, gone: Iterable[Waiting]) -> None:
        ids = {id(waiting) for waiting in gone}
        self._heap = [waiting for waiting in self._heap if id(waiting) not in ids]
        heapq.heapify(self._heap)

    def clear(self) -> None:
        self._heap.clear()
