"""Spend against the daily budget, from every worker's batch records on ``tierline.batches``."""

from __future__ import annotations

import orjson
from aiokafka import ConsumerRecord

from core.cost import DailyBudget
from schemas import BatchRecord
from streams.kafka.connection import KafkaConnection
from streams.kafka.whole_topic import WholeTopic

__all__ = ["Spend", "counted_usd"]


class Spend(WholeTopic):
    """Feeds the budget what each batch counts for: its estimate until it ended, then its cost."""

    def __init__(self, kafka: KafkaConnection, topic: str, budget: DailyBudget) -> None:
        super().__init__(kafka, topic)
        self.budget = budget

    def take(self, record: ConsumerRecord) -> None:
        if record.value is None:
            return
        batch = BatchRecord(**orjson.loads(record.value))
        if not batch.budget_day:
            return  # let through with no cap set
        self.budget.record(batch.batch_key, batch.budget_day, counted_usd(batch))


def counted_usd(batch: BatchRecord) -> float:
    """What a batch counts for: its estimate until it has ended, then its cost (nothing if refused)."""
    return {"ended": batch.cost_usd, "rejected": 0.0}.get(batch.state, batch.estimated_usd)
