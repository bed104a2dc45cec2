"""Fenced writes on the batch log, against the embedded broker: a former owner's records that land after
the new owner's mark are not trusted. Its late intent is closed ``superseded`` and never resumed; a batch it
created too late is adopted rather than created again."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import orjson

from core.limits import BatchGroup
from providers.base import SpooledBatch
from schemas import BatchRecord
from streams.kafka.publish import Publisher
from streams.kafka.topics import ensure_topics
from streams.settings import Settings
from streams.state.batch_log import BatchLog
from streams.state.spool import Spool
from tests.support import topic_values

GROUP = BatchGroup("anthropic", None, "claude-haiku-4-5")


def _deployment(broker_port: int) -> Settings:
    """A deployment of its own on the embedded broker."""
    name = f"o{uuid.uuid4().hex[:8]}"
    return Settings.from_env({"TIERLINE_BROKER": f"kafka://127.0.0.1:{broker_port}",
                              "TIERLINE_TOPIC_PREFIX": f"{name}.", "TIERLINE_APP_ID": name})


@asynccontextmanager
async def _publishers(settings: Settings, *names: str) -> AsyncIterator[list[Publisher]]:
    """A started publisher for each worker named."""
    publishers = [Publisher(settings.kafka, name) for name in names]
    for publisher in publishers:
        await publisher.start()
    try:
        yield publishers
    finally:
        for publisher in publishers:
            await publisher.stop()


def _spooled(spool: Spool, key: str, ids: list[str]) -> SpooledBatch:
    for custom_id in ids:
        spool.append(key, orjson.dumps({"custom_id": custom_id, "params": {}}), orjson.dumps(
            {"custom_id": custom_id, "attempt": 1, "source_partition": 0, "metadata": {}}))
    return spool.finish(key, GROUP, len(ids), 100)


async def _late_writes_of_a_former_owner(settings: Settings, folder: Path) -> tuple[list, list, list[dict]]:
    await ensure_topics(settings)
    async with _publishers(settings, "a", "b") as (a_pub, b_pub):
        a_spool = Spool(folder / "a")
        a = BatchLog(settings, a_pub, a_spool)
        await a.take({0})
        created = await a.intent(_spooled(a_spool, "tl-before", ["c-1", "c-2"]), 0)
        b = BatchLog(settings, b_pub, Spool(folder / "b"))
        await b.take({0})  # A is cut off from the group; B is given partition 0
        # A's writes on their way land only now: an intent, and the create of the batch it had recorded.
        await a.intent(_spooled(a_spool, "tl-too-late", ["c-3"]), 0)
        await a.record(BatchRecord(**{**orjson.loads(orjson.dumps(created)), "state": "submitted",
                                      "batch_id": "msgbatch_late"}))
        resumed = await b.unfinished({0}, generation=1)
        again = await BatchLog(settings, b_pub, Spool(folder / "c")).unfinished({0}, generation=2)
        records = [r for r in await topic_values(settings, settings.topics.batches) if "batch_key" in r]
        return resumed, again, records


def test_a_former_owners_late_intent_is_superseded_and_its_late_create_adopted(broker_port: int,
                                                                              tmp_path: Path) -> None:
    settings = _deployment(broker_port)
    resumed, again, records = asyncio.run(_late_writes_of_a_former_owner(settings, tmp_path))
    assert [(job.record.batch_key, job.record.state, job.record.batch_id) for job in resumed] == [
        ("tl-before", "submitted", "msgbatch_late")]  # followed, never created a second time
    assert [job.spooled.count for job in resumed] == [2]
    assert [(job.record.batch_key, job.record.batch_id) for job in again] == [("tl-before", "msgbatch_late")]
    late = [r for r in records if r["batch_key"] == "tl-too-late"]
    assert [r["state"] for r in late] == ["intent", "superseded"]  # closed by B: never created
    assert late[0]["owner"] != late[1]["owner"]


async def _held_elsewhere(settings: Settings, folder: Path) -> dict[str, dict[str, int]]:
    await ensure_topics(settings)
    requests = settings.topics.requests
    async with _publishers(settings, "b", "c") as (b_pub, c_pub):
        b_spool = Spool(folder / "b")
        b = BatchLog(settings, b_pub, b_spool)
        await b.take({0, 1})
        # B read items of partitions 2 and 3 (up to offsets 10 and 4) into a batch homed in partition 0 ...
        open_ = await b.intent(_spooled(b_spool, "tl-open", ["c-1", "c-2"]), 0,
                               sources=[(requests, 2, 10), (requests, 3, 4)])
        # ... and others into a batch already ended, and one whose items came from partition 1 only.
        ended = await b.intent(_spooled(b_spool, "tl-ended", ["c-3"]), 1, sources=[(requests, 2, 11)])
        await b.close(BatchRecord(**{**orjson.loads(orjson.dumps(ended)), "state": "ended"}))
        await b.intent(_spooled(b_spool, "tl-other", ["c-4"]), 1, sources=[(requests, 1, 7)])
        a = BatchLog(settings, b_pub, Spool(folder / "a"))
        seen = {
            "commit behind": await a.held_from({(requests, 2): 6, (requests, 3): 5}, {2, 3}),
            "commit past": await a.held_from({(requests, 2): 11, (requests, 3): 5}, {2, 3}),
            "home assigned": await a.held_from({(requests, 2): 6}, {0, 1, 2, 3}),
        }
        # B's hold on partition 0 passes to C; B writes an intent there afterwards: a late one, read again by design.
        await BatchLog(settings, c_pub, Spool(folder / "c")).take({0})
        await b.close(BatchRecord(**{**orjson.loads(orjson.dumps(open_)), "state": "ended"}))
        await b.intent(_spooled(b_spool, "tl-late", ["c-5"]), 0, sources=[(requests, 2, 20)])
        seen["late"] = await a.held_from({(requests, 2): 12}, {2, 3})
        return seen


def test_a_new_owner_knows_the_items_a_commit_behind_left_in_a_batch_homed_elsewhere(broker_port: int,
                                                                                    tmp_path: Path) -> None:
    settings = _deployment(broker_port)
    seen = asyncio.run(_held_elsewhere(settings, tmp_path))
    assert seen["commit behind"] == {"c-1": 1, "c-2": 1}  # the open batch's items; not the ended one's
    assert seen["commit past"] == {}  # the group will not give them again
    assert seen["home assigned"] == {}  # the caller resumes the batches homed in its own partitions
    assert seen["late"] == {}  # the ended batch is done; the late intent's items are read again, by design
