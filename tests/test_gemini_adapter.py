"""The Gemini adapter against the emulator through google-genai: upload, create, poll, results by key."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, AsyncIterator

import orjson
import pytest
from google import genai
from google.genai import types as genai_types

from core.limits import BatchGroup
from core.validation import Accepted, validate_doc
from emulator.server import EmulatorConfig, create_app
from providers.base import AccountRefused, BatchNotFound, ItemOutcome, ProviderBusy, ProviderUnavailable, SpooledBatch
from providers.gemini.batches import GeminiBatches
from streams.settings import Settings
from tests.support import read_results, serve_on_loopback


CAPS = Settings().catalogue


def item(i: int, marker: str = "") -> dict[str, Any]:
    return {"custom_id": f"g-{i:04d}", "provider": "gemini", "model": "gemini-2.5-flash",
            "params": {"contents": [{"role": "user", "parts": [{"text": f"Summarise note {i}. {marker}"}]}],
                       "generationConfig": {"maxOutputTokens": 64}}}


def spool(tmp_path: Path, items: list[dict[str, Any]], key: str = "tl-gemini-1") -> SpooledBatch:
    lines = []
    for doc in items:
        accepted = validate_doc(doc, CAPS)
        assert isinstance(accepted, Accepted), accepted
        lines.append(accepted.line)
    folder = tmp_path / key
    folder.mkdir()
    spooled = SpooledBatch(key, BatchGroup("gemini", None, "gemini-2.5-flash"), str(folder), len(lines), 0)
    spooled.input_path.write_bytes(b"\n".join(lines) + b"\n")
    return replace(spooled, size_bytes=spooled.input_path.stat().st_size)


@asynccontextmanager
async def emulator(tmp_path: Path, **config: Any) -> AsyncIterator[GeminiBatches]:
    app = create_app(EmulatorConfig(batch_seconds=0.3, data_dir=tmp_path / "emulator", **config))
    runner, port = await serve_on_loopback(app)
    client = genai.Client(api_key="emulator-key",
                          http_options=genai_types.HttpOptions(base_url=f"http://127.0.0.1:{port}/gemini"))
    adapter = GeminiBatches(client, scratch_dir=tmp_path)
    try:
        yield adapter
    finally:
        await adapter.close()
        await runner.cleanup()


@pytest.fixture
async def emulated(tmp_path: Path) -> AsyncIterator[GeminiBatches]:
    async with emulator(tmp_path, gemini_max_jobs=2) as adapter:
        yield adapter


async def ended(adapter: GeminiBatches, job: str) -> str:
    for _ in range(100):
        status = await adapter.status(job)
        if status.ended:
            return status.status
        await asyncio.sleep(0.1)
    raise AssertionError("the job never ended")


async def test_a_job_runs_and_its_results_are_read_by_key(emulated: GeminiBatches, tmp_path: Path) -> None:
    adapter = emulated
    items = [item(i) for i in range(40)] + [item(40, "#emulate:errored")]
    batch = spool(tmp_path, items)
    job = await adapter.submit(batch)
    assert job.startswith("batches/")
    assert await ended(adapter, job) == "JOB_STATE_SUCCEEDED"
    outcomes: list[ItemOutcome] = await read_results(adapter, job)
    by_key = {o.custom_id: o for o in outcomes}
    assert set(by_key) == {doc["custom_id"] for doc in items}
    assert [o.custom_id for o in outcomes] != sorted(by_key)  # the file came back in another order
    good = by_key["g-0007"]
    assert good.response is not None and "note 7" in good.response["candidates"][0]["content"]["parts"][0]["text"]
    assert good.usage is not None and good.usage["promptTokenCount"] > 0
    bad = by_key["g-0040"]
    assert bad.error is not None and bad.error.type == "INVALID_ARGUMENT" and not bad.retryable


async def test_an_orphaned_job_is_found_by_its_display_name(emulated: GeminiBatches, tmp_path: Path) -> None:
    adapter = emulated
    first, second = spool(tmp_path, [item(1)], "tl-a"), spool(tmp_path, [item(2)], "tl-b")
    job_a = await adapter.submit(first)
    job_b = await adapter.submit(second)
    assert await adapter.find(first, 0, set()) == job_a
    assert await adapter.find(second, 0, set()) == job_b
    assert await adapter.find(second, 0, {job_b}) is None
    assert await adapter.find(spool(tmp_path, [item(3)], "tl-c"), 0, set()) is None


async def test_a_create_past_the_jobs_in_progress_is_busy_and_its_upload_deleted(emulated: GeminiBatches,
                                                                                 tmp_path: Path) -> None:
    adapter = emulated
    for n in range(2):
        await adapter.submit(spool(tmp_path, [item(n)], f"tl-{n}"))
    with pytest.raises(ProviderBusy, match="RESOURCE_EXHAUSTED"):
        await adapter.submit(spool(tmp_path, [item(9)], "tl-9"))
    files = [f.display_name async for f in await adapter._aio.files.list()]
    assert "tl-9" not in files and {"tl-0", "tl-1"} <= set(files)


async def test_cancel_and_discard_input(emulated: GeminiBatches, tmp_path: Path) -> None:
    adapter = emulated
    job = await adapter.submit(spool(tmp_path, [item(n) for n in range(10)], "tl-x"))
    await adapter.cancel(job)
    status = await ended(adapter, job)
    assert status == "JOB_STATE_CANCELLED" and (await adapter.status(job)).cancelled
    await adapter.discard_input(job)
    assert "tl-x" not in [f.display_name async for f in await adapter._aio.files.list()]


async def test_without_a_key_the_account_refuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AccountRefused, match="GEMINI_API_KEY"):
        await GeminiBatches().submit(spool(tmp_path, [item(1)]))


def test_a_line_holds_the_key_and_the_request_without_its_model() -> None:
    named_in_body = {**item(1)["params"], "model": "models/gemini-2.5-pro"}
    accepted = validate_doc({**item(1), "model": None, "params": named_in_body}, CAPS)
    line = orjson.loads(accepted.line)  # type: ignore[union-attr]
    assert line["key"] == "g-0001" and "model" not in line["request"] and line["request"]["contents"]
    assert accepted.group == BatchGroup("gemini", None, "gemini-2.5-pro")  # type: ignore[union-attr]


async def test_odd_endings_a_broken_download_a_404_after_create_and_an_expired_job(tmp_path: Path) -> None:
    async with emulator(tmp_path, messy_results=True, transient_404_s=0.5) as adapter:
        batch = spool(tmp_path, [item(n) for n in range(8)] + [item(8, "#emulate:expired")])
        job = await adapter.submit(batch)
        with pytest.raises(BatchNotFound):  # right after the create, as the real APIs are known to answer
            await adapter.status(job)
        await asyncio.sleep(0.5)
        status = await adapter.status(job)
        while not status.ended:
            await asyncio.sleep(0.1)
            status = await adapter.status(job)
        # An expired job keeps what it finished; its unrun items are retried as batch_expired.
        assert status.status == "JOB_STATE_EXPIRED" and status.unrun is not None
        assert status.unrun.type == "batch_expired"
        with pytest.raises(ProviderUnavailable, match="broke off"):  # the first download breaks off half way
            await read_results(adapter, job)
        again = {o.custom_id for o in await read_results(adapter, job)}
        assert again == {f"g-{n:04d}" for n in range(8)}


async def test_a_fault_that_is_not_the_services_answer_is_never_read_as_the_service_unavailable() -> None:
    """Our bug (or the SDK's) must surface as itself: the agents then retry with a poll_failed alert, where
    "unavailable" would have had the batch wait silently for a provider that is not at fault."""
    async def get(name: str) -> Any:
        raise KeyError("a bug of ours")

    provider = GeminiBatches(client=SimpleNamespace(aio=SimpleNamespace(batches=SimpleNamespace(get=get))))  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        await provider.status("batches/123")
