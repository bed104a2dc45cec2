"""Many batches followed by listing, through the unmodified SDKs against the emulator: few requests,
and every follower sees its batch end with the counts a retrieve of its own gives."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest

from emulator.server import EmulatorConfig, create_app
from providers.anthropic.batches import AnthropicBatches
from providers.base import BatchStatus
from providers.openai.batches import OpenAIBatches
from providers.status_board import StatusBoard
from tests.support import serve_on_loopback

BATCHES = 30
POLL_S = 0.2


async def create_anthropic(port: int) -> tuple[AnthropicBatches, list[str]]:
    client = anthropic.AsyncAnthropic(api_key="emulator-key", base_url=f"http://127.0.0.1:{port}", max_retries=0)
    ids = []
    for n in range(BATCHES):
        params = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": f"q{n}"}]}
        created = await client.messages.batches.create(requests=[{"custom_id": f"c{n}", "params": params}])  # type: ignore[list-item]
        ids.append(created.id)
    return AnthropicBatches(client), ids


async def create_openai(port: int) -> tuple[OpenAIBatches, list[str]]:
    client = openai.AsyncOpenAI(api_key="emulator-key", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    ids = []
    for n in range(BATCHES):
        line = {"custom_id": f"c{n}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{n}"}]}}
        uploaded = await client.files.create(file=(f"b{n}.jsonl", orjson.dumps(line) + b"\n"), purpose="batch")
        created = await client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                              completion_window="24h")
        ids.append(created.id)
    return OpenAIBatches(client), ids


async def requests_by_route(port: int) -> dict[str, int]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/_emulator/requests") as response:
            counted: dict[str, int] = (await response.json())["by_route"]
            return counted


async def follow_until_ended(board: StatusBoard, batch_id: str, since: float) -> BatchStatus:
    interval = 0.0
    while not (status := await board.status(batch_id, since, interval / 2)).ended:
        interval = POLL_S
        await asyncio.sleep(interval)
    return status


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_batches_followed_by_listing_end_as_a_retrieve_says(tmp_path: Path, provider: str) -> None:
    runner, port = await serve_on_loopback(create_app(EmulatorConfig(data_dir=tmp_path, batch_seconds=2)))
    adapter: Any = None
    try:
        since = time.time()
        adapter, ids = await (create_anthropic(port) if provider == "anthropic" else create_openai(port))
        before = await requests_by_route(port)
        board = StatusBoard(adapter)
        seen = await asyncio.wait_for(asyncio.gather(*(follow_until_ended(board, i, since) for i in ids)), 60)
        after = await requests_by_route(port)
        retrieved = [await adapter.status(i) for i in ids]
    finally:
        if adapter is not None:
            await adapter.close()
        await runner.cleanup()
    assert [s.counts for s in seen] == [r.counts for r in retrieved]
    assert all(s.status == r.status and s.ended for s, r in zip(seen, retrieved, strict=True))
    polls = {route: after[route] - before.get(route, 0) for route in after if route.startswith("GET")}
    assert not any("{id}" in route for route in polls if polls[route]), polls  # no batch asked for alone
    rounds = 2 / POLL_S + 5  # the batches take 2 s; a listing per polling round, and a few to spare
    pages = 1 if provider == "anthropic" else 1 + BATCHES // 100
    assert sum(polls.values()) <= rounds * pages, polls


async def test_a_running_openai_batch_says_how_far_it_has_got_and_an_anthropic_one_does_not(tmp_path: Path) -> None:
    # As the live APIs: OpenAI's request_counts grow while the batch runs; Anthropic's stay at zero until its end.
    runner, port = await serve_on_loopback(create_app(EmulatorConfig(data_dir=tmp_path, batch_seconds=60)))
    openai_client = openai.AsyncOpenAI(api_key="emulator-key", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    adapters: list[Any] = [OpenAIBatches(openai_client)]
    try:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "q"}]}
        lines = b"".join(orjson.dumps({"custom_id": f"c{n}", "method": "POST", "url": "/v1/chat/completions",
                                       "body": body}) + b"\n" for n in range(600))
        uploaded = await openai_client.files.create(file=("b.jsonl", lines), purpose="batch")
        created = await openai_client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                                     completion_window="24h")
        anthropic_adapter, anthropic_ids = await create_anthropic(port)
        adapters.append(anthropic_adapter)
        await asyncio.sleep(1.0)
        running = await adapters[0].status(created.id)
        anthropic_running = await anthropic_adapter.status(anthropic_ids[0])
    finally:
        for adapter in adapters:
            await adapter.close()
        await runner.cleanup()
    assert running.status == "in_progress" and not running.ended
    assert running.progress is not None and 0 < running.progress[0] < running.progress[1] == 600
    assert not anthropic_running.ended and anthropic_running.progress is None
