"""What the agents share in one worker: settings, publisher, spool, ledger, batch log, providers.

It also holds the worker's batch ownership (``streams.ownership``): generation, batches in
hand, critical sections. It knows nothing of the agents: what they need to hear of flows
through the listeners the worker wires in (``settled_listeners``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Callable

import structlog
from mode import Service

from core.admission import Enqueued
from core.cost import DailyBudget, PriceTable
from providers import BatchProvider, make_provider
from providers.catalogue import warm
from providers.credentials import credentials
from providers.status_board import StatusBoard
from streams.kafka.fence import Fence
from streams.kafka.publish import Publisher
from streams.ownership import Ownership
from streams.settings import Settings
from streams.state.batch_log import BatchLog
from streams.state.crashes import CrashLog
from streams.state.enqueued import EnqueuedTokens
from streams.state.ledger import Ledger
from streams.state.budget import SharedBudget
from streams.state.call_budget import CallBudget
from streams.state.spool import Spool

__all__ = ["Runtime"]

log = structlog.get_logger(__name__)

BROKER_PROBE_S = 2.0  # how often the worker asks whether a broker is there


class Runtime(Service):
    """Started before the agents, stopped after them."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.publisher = Publisher(settings.kafka)
        self.spool = Spool(settings.spool_dir)
        self.ledger = Ledger.of(settings, Path(settings.data_dir), keep=True)
        self.crashes = CrashLog(settings.kafka, settings.topics.crashes)
        self.batch_log = BatchLog(settings, self.publisher, self.spool)
        self.prices = PriceTable.load(settings.prices_path, settings.catalogue.pricing())
        self.budget = DailyBudget(settings.daily_budget_usd, time.time)
        #: With TIERLINE_DAILY_BUDGET_USD: the budget every worker shares (followed by the window agent).
        self.spend = SharedBudget(settings.kafka, settings.topics.budget, self.budget, self.publisher)
        #: The same budget for synchronous calls, leased from it (``core.leases``).
        self.calls = CallBudget(self.spend, self.budget, self.publisher, settings.budget_lease_usd)
        #: Tokens at the providers per model, against TIERLINE_ENQUEUED_TOKEN_LIMITS (followed if any is set).
        self.enqueued = EnqueuedTokens(settings.kafka, settings.topics.batches,
                                       Enqueued(settings.token_limits))
        #: Batches are acted on only while the window agent's group lately confirmed their home partitions.
        self.ownership = Ownership(Fence.of(settings))
        #: Called with the custom_ids (each with the attempt that ended) of items whose events are out.
        self.settled_listeners: list[Callable[[list[tuple[str, int]]], None]] = []
        self._providers: dict[str, BatchProvider] = {}
        self._boards: dict[str, StatusBoard] = {}
        self.broker_reachable = True  # as of the last probe (the start itself reached it)
        #: The wall clock the agents read (tests give their own).
        self.clock: Callable[[], float] = time.time
        #: Per provider: None if this worker holds its credential, else what to set (looked at when it starts).
        self.credentials: dict[str, str | None] = {}
        self._warming: asyncio.Task[None] | None = None

    def checks(self) -> dict[str, bool]:
        """The runtime's part of the worker's readiness (``/readyz``)."""
        return {"started": self.state == "running", "ledger_loaded": self.ledger.loaded,
                "broker_reachable": self.broker_reachable}

    @Service.task
    async def _watch_broker(self) -> None:
        """Is a broker there? Asked every few seconds; a change is logged once, not at every failed call."""
        while not self.should_stop:
            try:
                reachable = await asyncio.wait_for(self.publisher.reachable(), BROKER_PROBE_S * 2)
            except asyncio.TimeoutError:
                reachable = False
            if reachable != self.broker_reachable:
                self.broker_reachable = reachable
                if reachable:
                    log.info("broker_reachable", broker=self.settings.broker)
                else:
                    log.warning("broker_unreachable", broker=self.settings.broker,
                                doing="not ready (/readyz 503); work waits and goes on once it is back")
            await self.sleep(BROKER_PROBE_S)

    def items_settled(self, settled: list[tuple[str, int]]) -> None:
        for listener in self.settled_listeners:
            listener(settled)

    def provider(self, name: str) -> BatchProvider:
        if name not in self._providers:
            self._providers[name] = make_provider(name, self.settings)
        return self._providers[name]

    def statuses(self, name: str) -> StatusBoard:
        """The statuses of the provider's batches this worker follows, read many to a request."""
        if name not in self._boards:
            self._boards[name] = StatusBoard(self.provider(name))
        return self._boards[name]

    async def on_start(self) -> None:
        # boto3's chain may ask the network
        self.credentials = await asyncio.to_thread(credentials, self.settings.catalogue)
        for provider, missing in self.credentials.items():
            if missing:
                log.warning("provider_credentials_missing", provider=provider, fix=missing,
                            doing="its batches wait with a provider_refused alert; the other providers' go on")
        # The providers' request checks and clients are made while the worker joins its group, not by its first
        # item or batch: on this loop, a provider at a time (in a thread, importing the SDKs raced the loop's own
        # imports of them). An SDK's import is most of it: about a second for anthropic's.
        self._warming = asyncio.get_running_loop().create_task(self._warm())
        await self.publisher.start()
        await self.crashes.start()

    async def _warm(self) -> None:
        catalogue = self.settings.catalogue
        for name in catalogue:
            await asyncio.sleep(0)  # what else is due runs between providers
            warm(catalogue, name)
            if name in self.credentials and self.credentials[name] is None:
                await asyncio.sleep(0)
                with contextlib.suppress(Exception):  # warming only: its first batch meets the same refusal
                    self.provider(name)

    async def on_stop(self) -> None:
        self.ownership.stop_following()
        for provider in self._providers.values():
            await provider.close()
        await self.crashes.stop()
        await self.calls.close()
        await self.publisher.stop()
