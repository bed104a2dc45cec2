"""The daily budget every worker shares, through ``tierline.budget``: one partition, folded in order
(``core.budget.BudgetLog``), so every worker agrees on which batch each grant went to."""

from __future__ import annotations

import asyncio
import time

import orjson
import structlog
from aiokafka import ConsumerRecord

from core.budget import BudgetLog
from core.cost import DailyBudget
from streams.kafka.connection import KafkaConnection
from streams.kafka.publish import Message, Publisher
from streams.kafka.whole_topic import WholeTopic

__all__ = ["SharedBudget"]

log = structlog.get_logger(__name__)

#: How long a reserve waits to read its own record back before it counts as not granted (asked again later).
DECISION_WAIT_S = 30.0


class SharedBudget(WholeTopic):
    """Folds the budget topic into ``log``; writes this worker's reserves, settles and moves to it."""

    def __init__(self, kafka: KafkaConnection, topic: str, budget: DailyBudget, publisher: Publisher) -> None:
        super().__init__(kafka, topic)
        self.log = BudgetLog(budget)
        self._publisher = publisher
        self._reading = asyncio.Lock()

    @property
    def budget(self) -> DailyBudget:
        return self.log.budget

    def take(self, record: ConsumerRecord) -> None:
        try:
            doc = orjson.loads(record.value) if record.value is not None else None
        except orjson.JSONDecodeError:
            doc = None  # not a budget record: nothing to fold, and nothing to stop for
        self.log.apply(record.offset, doc)

    async def catch_up(self, timeout_s: float = 0.0) -> int:
        async with self._reading:  # the agent's rounds and a reserve waiting for its decision read alike
            return await super().catch_up(timeout_s)

    async def reserve(self, batch_key: str, day: int, usd: float) -> bool:
        """Ask for room for a batch's estimate; True once the log says it was granted to it."""
        offset = await self._publisher.publish_one(Message(self.topic, batch_key, {
            "kind": "reserve", "batch_key": batch_key, "day": day, "usd": usd}, 0))
        deadline = time.monotonic() + DECISION_WAIT_S
        while (granted := self.log.decision(batch_key, offset)) is None:
            if time.monotonic() > deadline:
                log.warning("budget_decision_late", batch_key=batch_key, offset=offset, folded=self.log.folded)
                return False
            await self.catch_up(0.2)
        return granted
