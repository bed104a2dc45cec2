"""The explicit creation of tierline's topics (``schemas.topics``) at start-up.

Every topic is created with the configured partition count before any consumer
starts, never by the broker's auto-creation, so that co-partitioned topics
(requests, retry, ledger and the event topics) always agree.
"""

from __future__ import annotations

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from schemas.topics import TOPICS
from streams.settings import Settings

__all__ = ["ensure_topics", "require_topics", "TopicsMismatch"]


class TopicsMismatch(RuntimeError):
    """Topics that are not as tierline needs them: missing, or with another partition count."""

log = structlog.get_logger(__name__)


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every missing topic; return the names created."""
    admin = AIOKafkaAdminClient(**settings.kafka.options("admin"))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        ours = [settings.topics.named(spec.name) for spec in TOPICS if settings.topics.named(spec.name) in existing]
        if ours:
            counts = {topic["topic"]: len(topic["partitions"]) for topic in await admin.describe_topics(ours)}
            single = {settings.topics.named(spec.name) for spec in TOPICS if spec.single}
            if wrong := {name: n for name, n in counts.items() if name in single and n != 1}:
                raise TopicsMismatch("; ".join(f"topic {name} has {n} partitions, and tierline needs it to have 1: "
                                               "its order is what every worker agrees on. Delete it (a worker "
                                               "creates it again)" for name, n in sorted(wrong.items())))
            if wrong := {name: n for name, n in counts.items() if name not in single and n != settings.partitions}:
                raise TopicsMismatch(
                    "; ".join(f"topic {name} has {n} partitions" for name, n in sorted(wrong.items()))
                    + f", and tierline needs {settings.partitions} (TIERLINE_PARTITIONS) on every topic of the prefix "
                    f"{settings.topic_prefix!r}: its events stay on the partition their item came in on. Set "
                    "TIERLINE_PARTITIONS to the topics' count, or give this deployment another TIERLINE_TOPIC_PREFIX")
            await _check_record_limits(admin, settings, ours)
        wanted = [
            NewTopic(
                settings.topics.named(spec.name),
                1 if spec.single else settings.partitions,
                settings.replication,
                topic_configs={"max.message.bytes": str(settings.kafka.max_message_bytes),
                               **({"cleanup.policy": "compact"} if spec.compacted else {}),
                               **({"retention.ms": str(spec.retention_ms)} if spec.retention_ms else {})},
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


async def require_topics(settings: Settings, *short_names: str) -> None:
    """Raise ``TopicsMismatch`` unless these topics exist: a command reading or writing them must never
    have the broker create one (with its default partitions) by asking for it."""
    admin = AIOKafkaAdminClient(**settings.kafka.options("admin"))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    missing = [settings.topics.named(name) for name in short_names if settings.topics.named(name) not in existing]
    if missing:
        raise TopicsMismatch(f"no topic {', '.join(missing)} on {settings.broker}: a worker creates tierline's topics "
                             "when it first starts (tierline worker); or is the topic prefix "
                             f"({settings.topic_prefix!r}: --topic-prefix, TIERLINE_TOPIC_PREFIX) not the "
                             "deployment's?")


async def _check_record_limits(admin: AIOKafkaAdminClient, settings: Settings, names: list[str]) -> None:
    """Existing topics must take the records tierline writes: ``max.message.bytes`` at least its need."""
    needed = settings.kafka.max_message_bytes
    try:
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    except Exception as exc:  # noqa: BLE001 - a broker that cannot say: go on, and say so
        log.warning("topic_limits_unknown", error=str(exc))
        return
    small = {}
    for answer in answers:
        for error_code, _message, _kind, name, entries in answer.resources:
            for entry in entries if error_code == 0 else ():
                if entry[0] == "max.message.bytes" and entry[1] is not None and int(entry[1]) < needed:
                    small[name] = int(entry[1])
    if small:
        raise TopicsMismatch(
            "; ".join(f"topic {name} takes records of at most {n:,} bytes" for name, n in sorted(small.items()))
            + f", and tierline writes records up to {settings.kafka.max_record_bytes:,} bytes "
            f"(TIERLINE_KAFKA_MAX_RECORD_BYTES; max.message.bytes {needed:,} or more needed). Raise the topics' "
            "max.message.bytes, or lower TIERLINE_KAFKA_MAX_RECORD_BYTES to fit them")
