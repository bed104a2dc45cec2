"""The status page's data and HTML, in-process: what it shows, how often it reads Kafka, and who may see it."""

from __future__ import annotations

import asyncio
from typing import Any

from core.status import BatchRow
from streams.cli.status import Status
from streams.settings import Settings
from streams.status_page import REFRESH_S, StatusBoard, as_doc, refusal, render_body, render_page
from tests.clock import Clock

NOW = 1_796_000_000.0


def row(key: str, state: str = "submitted", provider_status: str | None = "in_progress", done: int = 0,
        **fields: Any) -> BatchRow:
    values: dict[str, Any] = dict(batch_key=key, provider="openai", model="gpt-4o-mini", batch_id=f"batch_{key}",
                                  items=100, state=state, provider_status=provider_status, done=done, failed=0,
                                  age_s=600.0, left_s=3600.0 * 23, unchanged_s=60.0, alert=None, cost_usd=0.0)
    return BatchRow(**{**values, **fields})


STATUS = Status(
    rows=[row("k-1", done=40, alert="stalled"), row("k-2", state="intent", provider_status="held_for_queue"),
          row("k-3", state="ended", provider_status="completed", done=100, cost_usd=0.0123, left_s=None)],
    spent_today_usd=0.5, budget_usd=10.0, saved_today_usd=0.49,
    alerts=({"kind": "stalled", "provider": "openai", "batch_key": "k-1", "batch_id": "batch_k-1",
             "message": "provider status 'in_progress' unchanged for 3600 s <script>alert(1)</script>",
             "at": NOW - 120},))


def test_the_page_sorts_batches_into_in_flight_held_and_ended_and_says_why_each_is_held() -> None:
    doc = as_doc(STATUS, held_by_budget=2, now=NOW)
    assert [r["batch_key"] for r in doc["in_flight"]] == ["k-1"]
    assert [(r["batch_key"], r["why"]) for r in doc["held"]] == [
        ("k-2", "waiting for room in its model's queue at the provider (TIERLINE_ENQUEUED_TOKEN_LIMITS)")]
    assert [r["batch_key"] for r in doc["ended"]] == ["k-3"]
    assert (doc["spent_today_usd"], doc["saved_today_usd"], doc["daily_budget_usd"]) == (0.5, 0.49, 10.0)
    body = render_body(doc)
    assert "<b>1</b> batches in flight, <b>3</b> held, <b>1</b> ended" in body  # 1 for the queue, 2 for the budget
    assert "<progress max=1 value=0.400></progress> 40/100" in body and "23h00m" in body
    assert "$0.5000 of a $10.00 daily budget" in body and "$0.4900" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert" not in body  # a message is text


def test_a_producers_model_name_is_text_even_when_it_looks_like_the_pages_own_html() -> None:
    hostile = "<progress onmouseover=alert(1)></progress>"
    status = Status(rows=[row("k-9", model=hostile)], spent_today_usd=0.0, budget_usd=0.0)
    body = render_body(as_doc(status, held_by_budget=0, now=NOW))
    assert "&lt;progress onmouseover=alert(1)&gt;" in body and "<progress onmouseover" not in body


def test_the_page_refreshes_its_body_itself_keeping_the_key() -> None:
    doc = as_doc(STATUS, held_by_budget=0, now=NOW)
    page = render_page(doc, "k&y")
    assert page.startswith("<!doctype html>") and render_body(doc) in page
    assert 'fetch("?part=body&key=k%26y"' in page and f"{int(REFRESH_S * 1000)});" in page


def test_kafka_is_read_at_most_once_a_refresh_however_many_ask() -> None:
    clock, reads = Clock(), []

    async def read(settings: Settings, ended_within_s: float) -> Status:
        reads.append(clock.now)
        await asyncio.sleep(0)
        return STATUS

    board = StatusBoard(Settings(), lambda: 0, read, clock=clock, wall=lambda: NOW)

    async def scenario() -> None:
        await asyncio.gather(*(board.snapshot() for _ in range(5)))
        clock.now += REFRESH_S - 0.1
        await board.snapshot()
        clock.now += 0.2
        await board.snapshot()

    asyncio.run(scenario())
    assert len(reads) == 2


def test_the_page_is_open_on_loopback_and_beyond_it_only_with_a_key() -> None:
    assert refusal(Settings(web_host="127.0.0.1"), []) is None
    status, why = refusal(Settings(web_host="0.0.0.0"), []) or (0, "")
    assert status == 503 and "TIERLINE_STATUS_KEYS" in why
    keyed = Settings(web_host="0.0.0.0", status_api_keys="page-key", realtime_api_keys="rt-key")
    assert (refusal(keyed, []) or (0,))[0] == 401
    assert (refusal(keyed, ["wrong"]) or (0,))[0] == 401
    assert refusal(keyed, ["page-key"]) is None and refusal(keyed, ["rt-key"]) is None
    assert (refusal(Settings(web_host="127.0.0.1", status_api_keys="page-key"), []) or (0,))[0] == 401
