"""Follow published items through the topics until each has reached an end (``submit --follow``, the demo).

Positions are taken at the end of every topic *before* the items are published, so
only what happens to them from then on is read. Items that had already succeeded are
skipped by the worker and produce no event: they are looked up in the ledger first.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from typing import Callable, Iterable, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from core.progress import ItemProgress
from schemas import HELD_FOR_QUEUE, RunKey, run_key
from streams.state.ledger import Ledger
from streams.settings import Settings
from streams.kafka.diagnose import explain
from streams.kafka.wait import Absence
from streams.kafka.whole_topic import assign_bounded, partitions_of

__all__ = ["Follower", "run_keys", "wanted_of"]

TOPICS = ("batch-items", "batches", "batch-status", "results", "failures", "deadletter")
BAR_WIDTH = 24
#: While following, how often Kafka is asked whether it is there (the consumer itself waits in silence).
PROBE_S = 5.0


class Follower:
    """``async with Follower(...) as f``: positions taken; publish; then ``await f.until_done()``."""

    def __init__(self, settings: Settings, wanted: dict[str, RunKey], unkeyed: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``wanted``: each published item's custom_id → its run key (the custom_id, within a re-run if any);
        ``unkeyed``: how many lines are published without a custom_id, each to end as a dead letter."""
        self.settings = settings
        self.progress = ItemProgress(set(wanted), clock, unkeyed)
        self._wanted = wanted
        self._topics = {settings.topics.named(name): name for name in TOPICS}
        # A fetch finding nothing waits on the broker for up to fetch_max_wait_ms: 500 ms by default, which the
        # last result waited out too (the command ended 0.5 s after the last item was settled).
        self._consumer = AIOKafkaConsumer(**settings.kafka.options("follow"), group_id=None,
                                          enable_auto_commit=False, fetch_max_bytes=32 << 20, fetch_max_wait_ms=100)

    async def __aenter__(self) -> Follower:
        try:
            return await self._enter()
        except BaseException:
            await self._consumer.stop()
            raise

    async def _enter(self) -> Follower:
        consumer = self._consumer
        await consumer.start()
        tps = [TopicPartition(topic, p) for topic in self._topics for p in await partitions_of(consumer, topic)]
        _, ends = await assign_bounded(consumer, tps)
        for tp, offset in ends.items():
            consumer.seek(tp, offset)
        consumer.resume(*tps)
        ledger = Ledger.of(self.settings)
        try:
            await ledger.start()
            self.progress.skip(cid for cid, key in self._wanted.items() if ledger.succeeded(key))
        finally:
            await ledger.stop()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_s: float = 0.5) -> None:
        batch = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=20_000)
        p = self.progress
        for tp, records in batch.items():
            kind = self._topics[tp.topic]
            for record in records:
                if record.value is None:
                    continue
                doc = orjson.loads(record.value)
                if kind == "results":
                    p.result(doc)
                elif kind == "failures":
                    p.failure(doc)
                elif kind == "batch-items":
                    p.batch_items(record.key.decode().rpartition("#")[0], (c["custom_id"] for c in doc["contexts"]))
                elif kind == "batches":
                    if doc.get("state") == "submitted":  # not an owner's mark (streams.state.batch_log)
                        p.batch_submitted(doc["batch_key"])
                elif kind == "batch-status":
                    if doc["provider_status"] == HELD_FOR_QUEUE:
                        p.batch_held(doc["batch_key"])
                else:
                    key = base64.b64decode(doc["key_b64"]).decode(errors="replace") if doc.get("key_b64") else None
                    p.dead_letter(key, doc["reason"])

    async def kafka_answers(self) -> str | None:
        """None if Kafka answers a metadata request now; else why not."""
        try:
            await asyncio.wait_for(self._consumer.topics(), PROBE_S * 2)
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            return await explain(self.settings.kafka, exc)
        return None

    async def until_done(self, timeout_s: float | None = None, out: TextIO = sys.stdout,
                         every_s: float | None = None, alive: Callable[[], None] | None = None,
                         kafka_wait_s: float | None = None) -> bool:
        """Poll and show progress until every item has ended (True) or the time is up (False).

        On a terminal one line is redrawn in place with a bar; otherwise a plain line is
        printed every ``every_s`` (default 5 s). ``alive`` may raise to stop following.
        With ``kafka_wait_s``, Kafka going away is said, and ``KafkaAway`` raised once it has
        been away that long.
        """
        tty = out.isatty()
        every_s = every_s if every_s is not None else (0.2 if tty else 5.0)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        notes: list[str] = []
        absence = None if kafka_wait_s is None else Absence(kafka_wait_s, notes.append)
        shown_at, probed_at = 0.0, time.monotonic()
        while True:
            await self.poll()
            if alive is not None:
                alive()
            # Asked every PROBE_S; and once more at the end if it was away, to say it came back.
            if absence is not None and (time.monotonic() - probed_at >= PROBE_S or
                                        (absence.away and self.progress.done)):
                if (reason := await self.kafka_answers()) is None:
                    absence.answered()
                else:
                    absence.failed(reason)
                probed_at = time.monotonic()
            now = time.monotonic()
            done = self.progress.done
            for note in [*notes, *self.progress.take_notes()]:
                out.write(("\r\033[K" if tty else "") + note + "\n")
            notes.clear()
            if done or now - shown_at >= every_s:
                shown_at = now
                if tty:
                    out.write("\r\033[K" + self.progress.line(BAR_WIDTH))
                else:
                    out.write(self.progress.line() + "\n")
                out.flush()
            if done or (deadline is not None and now >= deadline):
                if tty:
                    out.write("\n")
                return done
            await asyncio.sleep(0)


def run_keys(lines: Iterable[bytes]) -> dict[str, RunKey]:
    """custom_id → run key of each line that names one (others cannot be followed)."""
    return wanted_of(lines)[0]


def wanted_of(lines: Iterable[bytes]) -> tuple[dict[str, RunKey], int]:
    """``run_keys``, and how many lines name no custom_id (``Follower``'s ``unkeyed``): one pass over them."""
    found, unkeyed = {}, 0
    for line in lines:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            doc = None
        cid = doc.get("custom_id") if isinstance(doc, dict) else None
        if isinstance(cid, str) and cid:
            reprocess = doc.get("reprocess")
            found[cid] = run_key(cid, reprocess if isinstance(reprocess, str) else None)
        else:
            unkeyed += 1
    return found, unkeyed
