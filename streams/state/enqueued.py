"""Tokens waiting at each provider for each model, from every worker's batch records on ``tierline.batches``."""

from __future__ import annotations

import orjson
from aiokafka import ConsumerRecord

from core.admission import Enqueued
from streams.kafka.connection import KafkaConnection
from streams.kafka.whole_topic import WholeTopic
from streams.state.batch_log import record_of

__all__ = ["EnqueuedTokens"]


class EnqueuedTokens(WholeTopic):
    """Feeds ``core.admission.Enqueued``: a batch counts from its create until its record says it ended."""

    def __init__(self, kafka: KafkaConnection, topic: str, enqueued: Enqueued) -> None:
        super().__init__(kafka, topic)
        self.enqueued = enqueued

    def take(self, record: ConsumerRecord) -> None:
        if record.value is None:
            return
        batch = record_of(orjson.loads(record.value))
        if batch is None:
            return
        if batch.state == "submitted":
            self.enqueued.note(batch.batch_key, batch.provider, batch.model, batch.estimated_tokens)
        elif batch.state in ("ended", "rejected", "replaced", "superseded"):
            self.enqueued.forget(batch.batch_key)
