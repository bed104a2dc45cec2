"""Fenced writes on the batch log, against the embedded broker: a former owner's records that land after
the new owner's mark are not trusted. Its late intent is closed ``superseded`` and never resumed; a batch it
created too late is adopted rather than created again."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

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


def _spooled(spool: Spool, key: str, ids: list[str]) -> SpooledBatch:
    for custom_id in ids:
        spool.append(key, orjson.dumps({"custom_id": custom_id, "params": {}}), orjson.dumps(
            {"custom_id": custom_id, "attempt": 1, "source_partition": 0, "metadata": {}}))
    return spool.finish(key, GROUP, len(ids), 100)


async def _late_writes_of_a_former_owner(settings: Settings, folder: Path) -> tuple[list, list, list[dict]]:
    await ensure_topics(settings)
    a_pub, b_pub = Publisher(settings.kafka, "a"), Publisher(settings.kafka, "b")
    await a_pub.start()
    await b_pub.start()
    try:
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
    finally:
        await a_pub.stop()
        await b_pub.stop()


def test_a_former_owners_late_intent_is_superseded_and_its_late_create_adopted(broker_port: int,
                                                                              tmp_path: Path) -> None:
    name = f"o{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({"TIERLINE_BROKER": f"kafka://127.0.0.1:{broker_port}",
                                  "TIERLINE_TOPIC_PREFIX": f"{name}.", "TIERLINE_APP_ID": name})
    resumed, again, records = asyncio.run(_late_writes_of_a_former_owner(settings, tmp_path))
    assert [(job.record.batch_key, job.record.state, job.record.batch_id) for job in resumed] == [
        ("tl-before", "submitted", "msgbatch_late")]  # followed, never created a second time
    assert [job.spooled.count for job in resumed] == [2]
    assert [(job.record.batch_key, job.record.batch_id) for job in again] == [("tl-before", "msgbatch_late")]
    late = [r for r in records if r["batch_key"] == "tl-too-late"]
    assert [r["state"] for r in late] == ["intent", "superseded"]  # closed by B: never created
    assert late[0]["owner"] != late[1]["owner"]
