"""What the agents share in one worker: settings, publisher, spool, ledger, batch log, providers.

It also holds the worker's batch ownership (``streams.ownership``): generation, batches in
hand, critical sections. It knows nothing of the agents: what they need to hear of flows
through the listeners the worker wires in (``settled_listeners``).
"""

from __future__ import annotations

import time
from typing import Callable

from mode import Service

from core.admission import Enqueued
from core.cost import DailyBudget, PriceTable
from providers import BatchProvider, make_provider, preload
from streams.kafka.publish import Publisher
from streams.ownership import Ownership
from streams.settings import Settings
from streams.state.batch_log import BatchLog
from streams.state.crashes import CrashLog
from streams.state.enqueued import EnqueuedTokens
from streams.state.ledger import Ledger
from streams.state.spend import Spend
from streams.state.spool import Spool

__all__ = ["Runtime"]


class Runtime(Service):
    """Started before the agents, stopped after them."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.publisher = Publisher(settings.kafka)
        self.spool = Spool(settings.spool_dir)
        self.ledger = Ledger(settings.kafka, settings.topics.ledger)
        self.crashes = CrashLog(settings.kafka, settings.topics.crashes)
        self.batch_log = BatchLog(settings, self.publisher, self.spool)
        self.prices = PriceTable.load(settings.prices_path)
        self.budget = DailyBudget(settings.daily_budget_usd, time.time)
        self.spend = Spend(settings.kafka, settings.topics.batches, self.budget)
        #: Tokens at the providers per model, against TIERLINE_ENQUEUED_TOKEN_LIMITS (followed if any is set).
        self.enqueued = EnqueuedTokens(settings.kafka, settings.topics.batches,
                                       Enqueued(settings.token_limits))
        self.ownership = Ownership()
        #: Called with the custom_ids of every batch whose items have all had their event.
        self.settled_listeners: list[Callable[[list[str]], None]] = []
        self._providers: dict[str, BatchProvider] = {}

    def checks(self) -> dict[str, bool]:
        """The runtime's part of the worker's readiness (``/health``)."""
        return {"started": self.state == "running", "ledger_loaded": self.ledger.loaded}

    def items_settled(self, custom_ids: list[str]) -> None:
        for listener in self.settled_listeners:
            listener(custom_ids)

    def provider(self, name: str) -> BatchProvider:
        if name not in self._providers:
            self._providers[name] = make_provider(name, self.settings)
        return self._providers[name]

    async def on_start(self) -> None:
        preload()
        await self.publisher.start()
        await self.crashes.start()

    async def on_stop(self) -> None:
        self.ownership.stop_following()
        for provider in self._providers.values():
            await provider.close()
        await self.crashes.stop()
        await self.publisher.stop()
