"""What the agents share in one worker: settings, publisher, spool, ledger, batch log, providers.

It also keeps the worker's *generation*, bumped whenever partitions are taken
away: a batch job of an older generation belongs to whoever owns its home
partition now, and is dropped. Provider calls that create a batch and the
emission of a batch's results run as *critical sections*, which a rebalance
waits for, so that two workers never create or settle the same batch at once.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator

from mode import Service

from core.cost import DailyBudget, PriceTable
from providers import BatchProvider, make_provider, preload
from streams.state.batch_log import BatchLog
from streams.state.crashes import CrashLog
from streams.state.ledger import Ledger
from streams.kafka.publish import Publisher
from streams.settings import Settings
from streams.state.spend import Spend
from streams.state.spool import Spool

if TYPE_CHECKING:
    from agents.async_queue import AsyncQueue
    from agents.window_items import WindowItems

__all__ = ["Runtime"]


class Runtime(Service):
    """Started before the agents, stopped after them."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.publisher = Publisher(settings.bootstrap_servers)
        self.spool = Spool(settings.spool_dir)
        self.ledger = Ledger(settings.bootstrap_servers, settings.topic("ledger"))
        self.crashes = CrashLog(settings.bootstrap_servers, settings.topic("crashes"))
        self.batch_log = BatchLog(settings, self.publisher, self.spool)
        self.prices = PriceTable.load(settings.prices_path)
        self.budget = DailyBudget(settings.daily_budget_usd, time.time)
        self.spend = Spend(settings.bootstrap_servers, settings.topic("batches"), self.budget)
        self.window: WindowItems | None = None
        self.async_queue: AsyncQueue | None = None
        self.generation = 0
        #: Batches this worker has in hand in the current generation (not to be resumed again),
        #: each with the time it was closed: the in-flight batches of the metrics.
        self.owned: dict[str, float] = {}
        self.followers: set[asyncio.Task[None]] = set()
        self._critical: set[asyncio.Future[None]] = set()
        self._providers: dict[str, BatchProvider] = {}

    def ready(self) -> tuple[bool, dict[str, bool]]:
        """Whether the worker can take work, and each condition of it (``/health``)."""
        checks = {
            "started": self.state == "running",
            "ledger_loaded": self.ledger.loaded,
            "group_joined": self.window is not None and self.window.ready,
            "async_group_joined": self.async_queue is not None and self.async_queue.joined,
        }
        return all(checks.values()), checks

    def provider(self, name: str) -> BatchProvider:
        if name not in self._providers:
            self._providers[name] = make_provider(name, self.settings)
        return self._providers[name]

    @asynccontextmanager
    async def critical(self) -> AsyncIterator[None]:
        """A section a rebalance waits for instead of interrupting."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._critical.add(done)
        try:
            yield
        finally:
            self._critical.discard(done)
            done.set_result(None)

    async def hand_back(self, timeout_s: float = 60.0) -> None:
        """Partitions are being taken away: finish critical sections, stop following batches."""
        self.generation += 1
        self.owned.clear()
        if self._critical:
            await asyncio.wait(list(self._critical), timeout=timeout_s)
        for task in list(self.followers):
            task.cancel()

    async def on_start(self) -> None:
        preload()
        await self.publisher.start()
        await self.crashes.start()

    async def on_stop(self) -> None:
        for task in list(self.followers):
            task.cancel()
        for provider in self._providers.values():
            await provider.close()
        await self.crashes.stop()
        await self.publisher.stop()
