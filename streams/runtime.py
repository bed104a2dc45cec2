"""What the agents share in one worker: settings, the publisher, the spool, the ledger, providers."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from mode import Service

from providers import BatchProvider, make_provider, preload
from streams.ledger import Ledger
from streams.publish import Publisher
from streams.settings import Settings
from streams.spool import Spool

if TYPE_CHECKING:
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
        self.stats: Counter[str] = Counter()
        self.window: WindowItems | None = None
        self._providers: dict[str, BatchProvider] = {}

    def provider(self, name: str) -> BatchProvider:
        if name not in self._providers:
            self._providers[name] = make_provider(name)
        return self._providers[name]

    async def on_start(self) -> None:
        preload()
        await self.publisher.start()

    async def on_stop(self) -> None:
        for provider in self._providers.values():
            await provider.close()
        await self.publisher.stop()
