"""The emulator counts the API requests it answers, by route: how benchmarks tell how often a worker polls."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import anthropic
import pytest

from emulator.server import EmulatorConfig, create_app
from tests.support import serve_on_loopback


async def test_each_api_request_is_counted_by_its_route_and_the_hooks_are_not(tmp_path: Path) -> None:
    runner, port = await serve_on_loopback(create_app(EmulatorConfig(data_dir=tmp_path)))
    client = anthropic.AsyncAnthropic(api_key="emulator-key", base_url=f"http://127.0.0.1:{port}", max_retries=0)
    try:
        for _ in range(3):
            with pytest.raises(anthropic.NotFoundError):
                await client.messages.batches.retrieve("msgbatch_never_made")
        await client.messages.batches.list()
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://127.0.0.1:{port}/_emulator/batches")
            async with session.get(f"http://127.0.0.1:{port}/_emulator/requests") as response:
                counted = await response.json()
    finally:
        await client.close()
        await runner.cleanup()
    assert counted["by_route"] == {"GET /v1/messages/batches/{id}": 3, "GET /v1/messages/batches": 1}
    assert counted["total"] == 4
