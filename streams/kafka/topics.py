"""tierline's topics, and their explicit creation at start-up.

Every topic is created with the configured partition count before any consumer
starts, never by the broker's auto-creation, so that co-partitioned topics
(requests, retry, ledger and the event topics) always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings

__all__ = ["TopicSpec", "topic_specs", "ensure_topics"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic tierline owns: its short name, whether it is compacted, what it holds."""

    name: str
    compacted: bool
    doc: str


TOPICS = (
    TopicSpec("requests", False, "work items in, keyed by custom_id"),
    TopicSpec("retry", False, "failed items fed back one by one, with attempt and not_before"),
    TopicSpec("results", False, "one event per item that succeeded"),
    TopicSpec("failures", False, "one event per failed attempt"),
    TopicSpec("deadletter", False, "input that can never be processed, kept byte for byte"),
    TopicSpec("alerts", False, "what an operator must look at: stalled or expired batches, results at risk"),
    TopicSpec("async", False, "work items routed to the realtime or async tier, for the async-queue agent"),
    TopicSpec("ledger", True, "internal: custom_ids that have succeeded (idempotency)"),
    TopicSpec("batches", True, "internal: the life of every provider batch (write-ahead intent first)"),
    TopicSpec("batch-items", True, "internal: the items of each unfinished batch, deleted once it settles"),
    TopicSpec("batch-status", True, "internal: what the provider last said of each batch, for tierline status"),
    TopicSpec("crashes", True, "internal: how often workers died at a message, so that it is set aside"),
)


def topic_specs() -> tuple[TopicSpec, ...]:
    return TOPICS


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every missing topic; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                settings.topic(spec.name),
                settings.partitions,
                settings.replication,
                topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
            )
            for spec in TOPICS
            if settings.topic(spec.name) not in existing
        ]
        created: list[str] = []
        for topic in wanted:
            try:
                await admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # another worker created it first
        if created:
            log.info("topics_created", topics=created, partitions=settings.partitions)
        return created
    finally:
        await admin.close()
