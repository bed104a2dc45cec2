"""Crashes at a message, counted in Kafka, so that no message can crash workers forever.

Every step an agent takes with one message sits inside a per-item error boundary
(an exception there is a dead letter ``unprocessable``). What still escapes it — a
bug not yet found — ends the worker at once with exit status ``EXIT_CRASHED``, so
that its supervisor starts it again and no half-alive worker stays up; first the
message being handled is noted on the compacted ``tierline.crashes`` topic (key
``topic/partition/offset``). Every worker reads that topic whole: a message at
which workers died ``MAX_CRASHES`` times is dead-lettered ``crashed_worker`` when
it comes again, and the partition moves on. Nothing is lost meanwhile: offsets
past the message were never committed, so what was read with it comes again.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
from typing import Awaitable, Callable, NamedTuple, NoReturn

import orjson
import structlog
from aiokafka import ConsumerRecord, TopicPartition
from streams.kafka.connection import KafkaConnection

from streams.kafka.publish import Message, Publisher
from streams.kafka.whole_topic import WholeTopic

__all__ = ["CrashLog", "Position", "MAX_CRASHES", "EXIT_CRASHED", "SET_ASIDE", "unprocessable"]

log = structlog.get_logger(__name__)

MAX_CRASHES = 3
EXIT_CRASHED = 70  # EX_SOFTWARE: an internal error
NOTE_TIMEOUT_S = 5.0

#: The dead letter's message for a message set aside.
SET_ASIDE = (f"workers died {MAX_CRASHES} times or more handling this message; it is set aside so that the "
             "partition goes on (see the workers' agent_crashed log lines)")


class Position(NamedTuple):
    """Where a message stands: what a crash is counted at."""

    topic: str
    partition: int
    offset: int


def unprocessable(exc: Exception) -> str:
    """The dead letter's message for an item whose handling raised ``exc``."""
    return f"{type(exc).__name__}: {exc}"[:1000]


class CrashLog(WholeTopic):
    """How often workers died at each message of the topics tierline reads."""

    def __init__(self, kafka: KafkaConnection, topic: str) -> None:
        super().__init__(kafka, topic)
        self._crashes: dict[Position, int] = {}

    def take(self, record: ConsumerRecord) -> None:
        try:
            doc = orjson.loads(record.value)
            self._crashes[Position(doc["topic"], doc["partition"], doc["offset"])] = int(doc["crashes"])
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            log.warning("crash_record_unreadable", partition=record.partition, offset=record.offset)

    def crashes(self, at: Position) -> int:
        """How many times workers died handling this message (0 for almost every message: one dict lookup)."""
        return self._crashes.get(at, 0) if self._crashes else 0

    def set_aside(self, tp: TopicPartition, offset: int) -> bool:
        """Whether this message crashed workers too often to be handled again (asked of every message
        read: no position is made while no message has crashed a worker)."""
        return bool(self._crashes) and self.crashes(Position(tp.topic, tp.partition, offset)) >= MAX_CRASHES

    async def guard(self, loop: Awaitable[None], publisher: Publisher, at: Callable[[], Position | None],
                    agent: str) -> None:
        """Run an agent's read loop; a crash past its per-item boundary ends the worker (``died``) at ``at()``."""
        try:
            await loop
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - past the per-item boundary: end the worker, count it
            await self.died(publisher, at(), exc, agent)

    async def died(self, publisher: Publisher, at: Position | None, exc: BaseException,
                   agent: str) -> NoReturn:
        """Note the crash at ``at`` (the message being handled, if any), then end the process."""
        crashes = self.crashes(at) + 1 if at else 0
        log.critical("agent_crashed", agent=agent, error=repr(exc), at=at, crashes_here=crashes or None,
                     traceback="".join(traceback.format_exception(exc)))
        if at is not None:
            topic, partition, offset = at
            value = orjson.dumps({"topic": topic, "partition": partition, "offset": offset, "crashes": crashes,
                                  "error": repr(exc)[:2000], "at": time.time()})
            try:
                await asyncio.wait_for(publisher.publish([Message(self.topic, f"{topic}/{partition}/{offset}", value)]),
                                       NOTE_TIMEOUT_S)
            except Exception as problem:  # noqa: BLE001 - exiting anyway; the next crash counts
                log.error("crash_not_noted", error=repr(problem))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_CRASHED)
