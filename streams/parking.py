"""Parking waiting retries: written again at the end of their partition, so that the commit passes them.

Every ``TIERLINE_RETRY_PARK_S``, the waiting retries that hold back the commit of work behind them (and wait
longer than that still, ``core.parking``) are written again, byte for byte, at the end of their partition;
their old records' attempts are recorded as ended in the ledger, and their offsets released. A restart reads
again at most about that much of the work behind a waiting retry, and a retry is written again at most once
per that much of its wait.
"""

from __future__ import annotations

from typing import Callable

import structlog
from aiokafka.errors import KafkaError

from core.offsets import PendingOffsets
from core.outcomes import Ending
from core.parking import to_park
from core.waiting import Waiting, WaitingRetries
from streams import metrics
from streams.kafka.publish import Message
from streams.runtime import Runtime

__all__ = ["Parking"]

log = structlog.get_logger(__name__)


class Parking:
    """Parks ``waiting``'s retries, read from ``retry_topic`` (``read_from``: the input an ending names)."""

    def __init__(self, runtime: Runtime, waiting: WaitingRetries, offsets: Callable[[], PendingOffsets],
                 retry_topic: str, read_from: str, now: float) -> None:
        self.runtime = runtime
        self._waiting = waiting
        self._offsets = offsets
        self._topic, self._read_from = retry_topic, read_from
        self._every = runtime.settings.retry_park_s
        self._at = now + self._every

    async def park(self, now: float) -> None:
        """Park what is due for it, once per ``TIERLINE_RETRY_PARK_S``, while the partitions are surely ours."""
        if not self._waiting or now < self._at:
            return
        self._at = now + self._every
        ownership = self.runtime.ownership
        if not ownership.fence.fresh:
            return  # the partitions may be another worker's by now: that worker parks them
        offsets = self._offsets()
        parked: list[Waiting] = []
        for tp, entries in self._waiting.by_source().items():
            if (consumed := offsets.last_consumed(tp)) is not None:
                chosen = to_park(((entry.not_before, entry.offset) for entry in entries), consumed, now, self._every)
                parked += (entry for entry in entries if entry.offset in chosen)
        if not parked:
            return
        generation = ownership.generation
        ended: list[Ending] = [(self._read_from, entry.source[1], entry.offset, entry.timestamp_ms) for entry in parked]
        try:
            # The copies first: a crash before the endings leaves twins (one runs: the other is its attempt's
            # twin), never neither.
            await self.runtime.publisher.publish(
                [Message(self._topic, entry.retry.custom_id, entry.retry, entry.source[1]) for entry in parked])
            await self.runtime.publisher.publish(self.runtime.ledger.endings(
                f"~parked-{self._read_from}-{ended[0][1]}-{ended[0][2]}", "", ended,
                self.runtime.settings.kafka_max_record_bytes // 2))
        except KafkaError as exc:  # still waiting here, and held: parked in a later round
            log.warning("retries_not_parked", items=len(parked), error=repr(exc))
            return
        if not ownership.current(generation):
            return  # handed back meanwhile: the new owner reads the old records or the copies, and runs one
        self._waiting.remove(parked)
        for entry in parked:
            offsets.release(entry.source, entry.offset)
        metrics.retries_parked.inc(len(parked))
        log.info("retries_parked", items=len(parked), partitions=sorted({entry.source[1] for entry in parked}),
                 waiting=len(self._waiting))
