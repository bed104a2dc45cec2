"""The files tierline leaves at OpenAI: results kept as long as it asked, inputs deleted once done with."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import openai
import pytest

from streams.local.workload import make_items
from streams.settings import Settings
from tests.support import follow, publish_items


@pytest.fixture(scope="module")
def client(emulator_port: int) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{emulator_port}/v1", api_key="emulator-key")


def settled_batches(start_worker: Callable[..., Settings], client: openai.OpenAI, **overrides: str) -> list:
    """Run a dozen OpenAI items through a worker; the provider's batches that held them."""
    settings = start_worker(TIERLINE_OPENAI_OUTPUT_EXPIRES_S="86400", **overrides)
    items = make_items(12, f"files-{settings.app_id}", providers=("openai",))
    publish_items(settings, items)
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=120))
    return [client.batches.retrieve(batch_id) for batch_id in sorted(progress.batches)]


def exists(client: openai.OpenAI, file_id: str) -> bool:
    try:
        client.files.retrieve(file_id)
        return True
    except openai.NotFoundError:
        return False


def test_results_are_kept_as_long_as_asked_and_inputs_are_deleted(start_worker, client) -> None:  # type: ignore[no-untyped-def]
    batches = settled_batches(start_worker, client)
    assert batches
    for batch in batches:
        assert batch.output_file_id is not None
        output = client.files.retrieve(batch.output_file_id)
        assert output.expires_at == output.created_at + 86_400
        deadline = time.time() + 30
        while exists(client, batch.input_file_id) and time.time() < deadline:
            time.sleep(0.2)  # deleted just after the batch's record closes
        assert not exists(client, batch.input_file_id)


def test_inputs_are_kept_when_asked(start_worker, client) -> None:  # type: ignore[no-untyped-def]
    batches = settled_batches(start_worker, client, TIERLINE_KEEP_INPUT_FILES="true")
    time.sleep(2)
    assert batches and all(exists(client, batch.input_file_id) for batch in batches)
