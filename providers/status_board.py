"""Batch statuses read by listing a provider's batches, not by asking for each one.

A worker follows every batch it submitted, each on its own polling interval. A thousand
batches in flight asked for one by one are a thousand requests per round; listed, they are one
page (Anthropic, 1,000 a page) or ten (OpenAI, 100 a page). The board answers a follower from
the last listing when that listing is recent enough for it (half its own interval), and lists
again otherwise: every follower whose status is due then waits for the same listing, which
stops as soon as all of them are in it. A batch the listing does not show (just created, or
gone) is asked for alone, so a follower hears exactly what it would have heard by itself.

Listing is an optimisation and never a dependency: a provider without it, or one that refuses
it (a service of OpenAI's shape without the list call), is asked batch by batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import AsyncGenerator, Callable, Protocol, runtime_checkable

import structlog

from providers.base import BatchProvider, BatchStatus, ProviderError

__all__ = ["StatusBoard", "ListsBatches", "LIST_MARGIN_S"]

log = structlog.get_logger(__name__)

#: How much earlier than the oldest batch wanted a listing still reads: clocks differ.
LIST_MARGIN_S = 600.0
#: How long a listing waits for followers woken at about the same time to join it.
GATHER_S = 0.1


@runtime_checkable
class ListsBatches(Protocol):
    """A provider that can list its batches, newest first, with each one's status."""

    def listed(self, since: float) -> AsyncGenerator[tuple[str, BatchStatus], None]:
        """``(batch id, status)`` of every batch created at or after ``since`` (epoch seconds),
        newest first; it may go on past ``since``, and stops when the consumer stops."""


class StatusBoard:
    """One provider's batch statuses for the batches this worker follows."""

    def __init__(self, provider: BatchProvider, clock: Callable[[], float] = time.monotonic,
                 gather_s: float = GATHER_S) -> None:
        self._provider = provider
        self._lister = provider if isinstance(provider, ListsBatches) else None
        self._clock = clock
        self._gather_s = gather_s
        self._created: dict[str, float] = {}  # batch id → when it was created (epoch s), for each followed
        self._seen: dict[str, tuple[float, BatchStatus]] = {}  # batch id → (read at, status)
        self._wanted: set[str] = set()  # ids whose followers wait for the next listing
        self._next: asyncio.Task[set[str]] | None = None  # the next listing, gathering its followers
        self._one_at_a_time = asyncio.Lock()

    async def status(self, batch_id: str, created_at: float, max_age_s: float) -> BatchStatus:
        """The batch's status as read at most ``max_age_s`` ago (0: read now)."""
        if self._lister is None:
            return await self._provider.status(batch_id)
        self._created[batch_id] = created_at
        seen = self._seen.get(batch_id)
        if seen is not None and self._clock() - seen[0] <= max_age_s:
            return seen[1]
        self._wanted.add(batch_id)
        if self._next is None:
            self._next = asyncio.create_task(self._list(), name=f"list-{self._provider.name}-batches")
            self._next.add_done_callback(_retrieved)
        listed = await asyncio.shield(self._next)
        if batch_id in listed:
            return self._seen[batch_id][1]
        status = await self._provider.status(batch_id)  # not listed: just created, or gone
        if batch_id in self._created:
            self._seen[batch_id] = (self._clock(), status := self._same(batch_id, status))
        return status

    def age_s(self, batch_id: str) -> float:
        """How long ago the status ``status`` last gave for the batch was read (0: just now)."""
        seen = self._seen.get(batch_id)
        return max(0.0, self._clock() - seen[0]) if seen is not None else 0.0

    def _same(self, batch_id: str, status: BatchStatus) -> BatchStatus:
        """The status seen before, if this one equals it: the follower keeps the one it saw first while
        nothing changes, and a thousand batches held for hours would otherwise keep two each."""
        seen = self._seen.get(batch_id)
        return seen[1] if seen is not None and seen[1] == status else status

    def forget(self, batch_id: str) -> None:
        """The batch is no longer followed here (ended, or handed back)."""
        self._created.pop(batch_id, None)
        self._seen.pop(batch_id, None)
        self._wanted.discard(batch_id)

    async def _list(self) -> set[str]:
        """Read the listing until every wanted batch is in it; the ids of those that were."""
        async with self._one_at_a_time:
            await asyncio.sleep(self._gather_s)
            self._next = None  # who asks from here on waits for the listing after this one
            wanted = {i for i in self._wanted if i in self._created}
            self._wanted = set()
            if not wanted or self._lister is None:
                return set()
            since, read_at, found = min(self._created[i] for i in wanted) - LIST_MARGIN_S, self._clock(), set()
            try:
                async with contextlib.aclosing(self._lister.listed(since)) as listing:
                    async for batch_id, status in listing:
                        if batch_id in self._created:
                            self._seen[batch_id] = (read_at, self._same(batch_id, status))
                            if batch_id in wanted:
                                found.add(batch_id)
                                if len(found) == len(wanted):
                                    break
            except ProviderError as exc:
                if exc.retryable:
                    raise  # the provider is down: asking batch by batch would fail the same way
                self._lister = None
                log.warning("batch_listing_refused", provider=self._provider.name, error=str(exc),
                            note="statuses are asked for batch by batch from now on")
            except Exception:  # noqa: BLE001 - an answer nobody foresaw: this round's followers are asked alone
                log.exception("batch_listing_failed", provider=self._provider.name)
            return found


def _retrieved(task: asyncio.Task[set[str]]) -> None:
    """Every waiter hears a listing's error; this keeps one nobody waited for from being reported."""
    if not task.cancelled():
        task.exception()
