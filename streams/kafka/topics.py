"""The explicit creation of tierline's topics (``schemas.topics``) at start-up.

Every topic is created with the configured partition count before any consumer
starts, never by the broker's auto-creation, so that co-partitioned topics
(requests, retry, ledger and the event topics) always agree.
"""

from __future__ import annotations

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.topics import TOPICS
from streams.settings import Settings

__all__ = ["ensure_topics"]

log = structlog.get_logger(__name__)


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every missing topic; return the names created."""
    admin = AIOKafkaAdminClient(**settings.kafka.options("admin"))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                settings.topics.named(spec.name),
                settings.partitions,
                settings.replication,
                topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
            )
            for spec in TOPICS
            if settings.topics.named(spec.name) not in existing
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
