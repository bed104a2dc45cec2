"""Alerts an operator sees on tierline.alerts: here, a batch that stays unchanged too long."""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaConsumer

from streams.produce import publish_lines
from streams.settings import Settings
from streams.workload import make_items
from tests.test_batch_tier import follow


async def read_alerts(settings: Settings) -> list[dict]:
    consumer = AIOKafkaConsumer(settings.topic("alerts"), bootstrap_servers=settings.bootstrap_servers,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=2000)
        return [orjson.loads(r.value) for records in batch.values() for r in records]
    finally:
        await consumer.stop()


def test_a_batch_unchanged_longer_than_the_stall_time_raises_an_alert_and_still_ends(start_worker) -> None:  # type: ignore[no-untyped-def]
    # The emulator takes 1 s per batch: with a 0.2 s stall time, every batch looks stalled for a while.
    settings = start_worker(TIERLINE_STALL_AFTER_S="0.2", TIERLINE_POLL_INITIAL_S="0.1", TIERLINE_POLL_MAX_S="0.1")
    items = make_items(20, "stall")
    asyncio.run(publish_lines(settings, [orjson.dumps(item) for item in items]))
    ids = {item["custom_id"] for item in items}
    asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=120))
    alerts = asyncio.run(read_alerts(settings))
    stalled = [a for a in alerts if a["kind"] == "stalled"]
    assert stalled and all(a["batch_id"] and a["seconds"] >= 0.2 for a in stalled)
    assert "still polling" in stalled[0]["message"]
