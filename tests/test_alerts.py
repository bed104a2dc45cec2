"""Alerts an operator sees on tierline.alerts: here, a batch that stays unchanged too long."""

from __future__ import annotations

import asyncio
from typing import Iterator

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from streams.settings import Settings
from streams.local.workload import make_items
from tests.support import Workers, follow, publish_items, slow_emulator_workers, validate_events


async def read_alerts(settings: Settings) -> list[dict]:
    consumer = AIOKafkaConsumer(settings.topics.alerts, bootstrap_servers=settings.bootstrap_servers,
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
    publish_items(settings, items)
    ids = {item["custom_id"] for item in items}
    asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=120))
    alerts = asyncio.run(read_alerts(settings))
    validate_events("alerts", alerts)
    stalled = [a for a in alerts if a["kind"] == "stalled"]
    assert stalled and all(a["batch_id"] and a["seconds"] >= 0.2 for a in stalled)
    assert "still polling" in stalled[0]["message"]


@pytest.fixture(scope="module")
def stuck_workers(broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    """Workers against a provider whose batches say they expire after 1 s but run for 100 s."""
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 100, "--expires-after", "1") as pool:
        yield pool


def test_a_batch_past_its_expiry_is_cancelled_and_its_items_retried_then_failed(stuck_workers: Workers) -> None:
    env = stuck_workers.env(TIERLINE_EXPIRY_GRACE_S="0.5", TIERLINE_MAX_ATTEMPTS="2")
    stuck_workers.start(env)
    settings = Settings.from_env(env)
    items = make_items(5, "stuck", providers=("anthropic",))
    publish_items(settings, items)
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=120))
    for cid in ids:  # each attempt's batch was given up on; the second failure is final
        first, second = progress.failures[cid]
        assert (first["attempt"], first["final"], second["attempt"], second["final"]) == (1, False, 2, True)
    expired = [a for a in asyncio.run(read_alerts(settings)) if a["kind"] == "expired"]
    assert len(expired) == 2 and "cancelling" in expired[0]["message"]
