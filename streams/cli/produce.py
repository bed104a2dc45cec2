"""Publish work items to ``tierline.requests`` from JSONL, for producers without a Kafka client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from core.limits import request_limit
from core.validation import Rejected, validate
from streams.kafka.publish import Message, Publisher
from streams.kafka.topics import require_topics
from streams.settings import Settings

__all__ = ["read_jsonl", "iter_jsonl", "numbered_jsonl", "check_lines", "publish_lines", "key_of", "LineProblem"]


@dataclass(frozen=True, slots=True)
class LineProblem:
    number: int
    reason: str
    message: str


def read_jsonl(path: Path) -> list[bytes]:
    return list(iter_jsonl(path))


def iter_jsonl(path: Path) -> Iterator[bytes]:
    """The file's lines that are not blank, without their line breaks, read as they are asked for: a
    file of any size is checked and published in little memory."""
    return (line for _, line in numbered_jsonl(path))


def numbered_jsonl(path: Path) -> Iterator[tuple[int, bytes]]:
    """``iter_jsonl``'s lines, each with its line number in the file (from 1, blank lines counted)."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield number, line.rstrip(b"\r\n")


def check_lines(lines: Iterable[tuple[int, bytes]], settings: Settings) -> Iterator[LineProblem]:
    """The lines (numbered) the service would dead-letter, with the reason."""
    limit = request_limit(settings.kafka_max_record_bytes)
    for number, line in lines:
        if len(line) > limit:
            yield LineProblem(number, "item_too_large", f"the line is {len(line):,} bytes; tierline carries an item "
                              f"in Kafka records of at most {limit:,} bytes (TIERLINE_KAFKA_MAX_RECORD_BYTES, less "
                              "4 KB): shorten it, or raise the limit with the topics' max.message.bytes")
            continue
        verdict = validate(line, settings.catalogue)
        if isinstance(verdict, Rejected):
            yield LineProblem(number, verdict.reason, verdict.message)


def key_of(line: bytes) -> str | None:
    """The message key for a line: its custom_id, or None when it has none."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    custom_id = doc.get("custom_id") if isinstance(doc, dict) else None
    return custom_id if isinstance(custom_id, str) and custom_id else None


async def publish_lines(settings: Settings, lines: Iterable[bytes]) -> int:
    """Publish each line as it is, keyed by its custom_id (in the partition Kafka's own clients would
    choose for it); return how many were acknowledged. Sent as tierline sends its own events: in record
    batches built per partition, one wait for them all."""
    await require_topics(settings, "requests")  # producing to a missing topic would have the broker create it
    publisher = Publisher(settings.kafka, "submit")
    try:
        await publisher.start()
        topic = settings.topics.requests
        return await publisher.publish(Message(topic, key_of(line), line) for line in lines)
    finally:
        await publisher.stop()
