"""The status board: many followers, few requests, and each hears what it would have heard alone."""

from __future__ import annotations

import asyncio
from typing import AsyncGenerator

import pytest

from providers import BatchNotFound, BatchStatus, ProviderUnavailable
from providers.base import ProviderError
from providers.status_board import LIST_MARGIN_S, StatusBoard


def running(batch_id: str) -> BatchStatus:
    return BatchStatus("in_progress", False, {"processing": 1, "id": batch_id})


class FakeProvider:
    """Batches created one a second, newest first in the listing; counts what it was asked."""

    name = "fake"

    def __init__(self, batches: int, page: int = 10, listing_error: Exception | None = None) -> None:
        self.statuses = {f"b{i}": running(f"b{i}") for i in range(batches)}
        self.created = {f"b{i}": 1_000.0 + i for i in range(batches)}
        self.page = page
        self.listing_error = listing_error
        self.listings = 0
        self.pages = 0
        self.lone: list[str] = []
        self.unlisted: set[str] = set()  # created, but not yet in the listing

    async def status(self, batch_id: str) -> BatchStatus:
        self.lone.append(batch_id)
        if batch_id not in self.statuses:
            raise BatchNotFound(batch_id)
        return self.statuses[batch_id]

    async def listed(self, since: float) -> AsyncGenerator[tuple[str, BatchStatus], None]:
        self.listings += 1
        if self.listing_error is not None:
            raise self.listing_error
        newest = sorted((i for i in self.statuses if i not in self.unlisted), key=self.created.__getitem__,
                        reverse=True)
        for n, batch_id in enumerate(newest):
            if n % self.page == 0:
                self.pages += 1
                await asyncio.sleep(0)
            if self.created[batch_id] < since:
                return
            yield batch_id, self.statuses[batch_id]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def board_of(provider: FakeProvider, clock: Clock | None = None) -> StatusBoard:
    return StatusBoard(provider, clock=clock or Clock(), gather_s=0)  # type: ignore[arg-type]


async def test_followers_due_together_share_one_listing() -> None:
    provider = FakeProvider(50)
    board = board_of(provider)
    got = await asyncio.gather(*(board.status(i, provider.created[i], 0) for i in provider.statuses))
    assert got == list(provider.statuses.values())
    assert provider.listings == 1
    assert provider.lone == []


async def test_a_recent_enough_reading_is_reused_and_an_older_one_is_read_again() -> None:
    provider, clock = FakeProvider(5), Clock()
    board = board_of(provider, clock)
    await asyncio.gather(*(board.status(i, provider.created[i], 0) for i in provider.statuses))
    clock.now = 30
    provider.statuses["b2"] = BatchStatus("ended", True, {"succeeded": 1})
    assert (await board.status("b2", provider.created["b2"], max_age_s=60)).ended is False  # read 30 s ago
    assert provider.listings == 1
    assert (await board.status("b2", provider.created["b2"], max_age_s=10)).ended is True
    assert provider.listings == 2


async def test_the_listing_stops_once_every_wanted_batch_is_in_it() -> None:
    provider = FakeProvider(100, page=10)
    board = board_of(provider)
    await board.status("b95", provider.created["b95"], 0)  # among the newest: the first page holds it
    assert provider.pages == 1


async def test_the_listing_reads_no_further_back_than_the_oldest_wanted_batch_allows() -> None:
    provider = FakeProvider(20, page=1)
    provider.created = {i: t * LIST_MARGIN_S for i, t in provider.created.items()}  # far apart in time
    provider.unlisted.add("b15")
    board = board_of(provider)
    await board.status("b15", provider.created["b15"], 0)
    assert provider.pages == 6  # b19..b16, b14, and b13, which shows the listing has gone past
    assert provider.lone == ["b15"]


async def test_a_batch_the_listing_does_not_show_is_asked_for_alone() -> None:
    provider = FakeProvider(3)
    provider.unlisted.add("b1")
    board = board_of(provider)
    assert await board.status("b1", provider.created["b1"], 0) == provider.statuses["b1"]
    assert provider.lone == ["b1"]
    with pytest.raises(BatchNotFound):  # gone: the follower hears the provider's own 404
        await board.status("gone", 1_000, 0)


async def test_a_listing_the_provider_is_down_for_fails_each_follower_without_more_requests() -> None:
    provider = FakeProvider(10, listing_error=ProviderUnavailable("503"))
    board = board_of(provider)
    results = await asyncio.gather(*(board.status(i, provider.created[i], 0) for i in provider.statuses),
                                   return_exceptions=True)
    assert all(isinstance(r, ProviderUnavailable) for r in results)
    assert provider.listings == 1
    assert provider.lone == []


async def test_a_provider_that_refuses_listing_is_asked_batch_by_batch_from_then_on() -> None:
    provider = FakeProvider(4, listing_error=ProviderError("404: no such route"))
    board = board_of(provider)
    assert await board.status("b0", provider.created["b0"], 0) == provider.statuses["b0"]
    assert await board.status("b1", provider.created["b1"], 0) == provider.statuses["b1"]
    assert provider.listings == 1
    assert provider.lone == ["b0", "b1"]


async def test_a_provider_without_listing_is_asked_batch_by_batch() -> None:
    class Plain:
        name = "plain"
        asked: list[str] = []

        async def status(self, batch_id: str) -> BatchStatus:
            self.asked.append(batch_id)
            return running(batch_id)

    plain = Plain()
    board = StatusBoard(plain)  # type: ignore[arg-type]
    await asyncio.gather(board.status("x", 0, 60), board.status("y", 0, 60))
    assert plain.asked == ["x", "y"]


async def test_a_forgotten_batch_is_no_longer_kept() -> None:
    provider, clock = FakeProvider(3), Clock()
    board = board_of(provider, clock)
    await asyncio.gather(*(board.status(i, provider.created[i], 0) for i in provider.statuses))
    board.forget("b0")
    await board.status("b0", provider.created["b0"], max_age_s=3_600)  # nothing kept: read again
    assert provider.listings == 2


async def test_a_listing_that_breaks_in_a_way_nobody_foresaw_leaves_each_follower_asked_alone() -> None:
    provider = FakeProvider(3, listing_error=RuntimeError("odd answer"))
    board = board_of(provider)
    got = await asyncio.gather(*(board.status(i, provider.created[i], 0) for i in provider.statuses))
    assert got == list(provider.statuses.values())
    assert sorted(provider.lone) == ["b0", "b1", "b2"]
