"""The OpenAI adapter's file hygiene, against a stand-in client: an upload no batch will use is deleted."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2 as httpx  # the SDK's own HTTP client
import openai
import pytest

from core.limits import BatchGroup
from providers.base import AccountRefused, ProviderBusy, ProviderUnavailable, SpooledBatch
from providers.openai.batches import OpenAIBatches


class Client:
    """Uploads succeed; creates answer ``status``; deletes are noted."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.deleted: list[str] = []

        async def upload(**kwargs: Any) -> Any:
            return SimpleNamespace(id="file-1")

        async def create(**kwargs: Any) -> Any:
            response = httpx.Response(status, json={"error": body}, request=httpx.Request("POST", "http://x"))
            raise openai.APIStatusError(body["message"], response=response, body=body)

        async def delete(file_id: str) -> Any:
            self.deleted.append(file_id)

        self.files = SimpleNamespace(create=upload, delete=delete)
        self.batches = SimpleNamespace(create=create)

    def with_options(self, **kwargs: Any) -> Client:
        return self


def spooled(tmp_path: Path) -> SpooledBatch:
    (tmp_path / "input.jsonl").write_bytes(b'{"custom_id": "a"}\n')
    return SpooledBatch("tl-1", BatchGroup("openai", "/v1/chat/completions", "gpt-4o-mini"), str(tmp_path), 1, 19)


@pytest.mark.parametrize(("status", "body", "raised", "deleted"), [
    (429, {"message": "Too many batch creations", "type": "rate_limit_exceeded", "code": "rate_limit_exceeded"},
     ProviderBusy, ["file-1"]),
    (429, {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"},
     AccountRefused, ["file-1"]),
    (500, {"message": "The server had an error", "type": "server_error", "code": None},
     ProviderUnavailable, []),  # the create may have happened: its file is the batch's
])
async def test_an_upload_no_batch_was_created_from_is_deleted(tmp_path: Path, status: int, body: dict,
                                                             raised: type, deleted: list[str]) -> None:
    client = Client(status, body)
    adapter = OpenAIBatches(client)  # type: ignore[arg-type]
    with pytest.raises(raised):
        await adapter.submit(spooled(tmp_path))
    assert client.deleted == deleted


async def test_an_odd_entry_in_the_batch_listing_is_skipped_and_the_rest_listed() -> None:
    def batch(batch_id: str, created_at: Any) -> Any:
        return SimpleNamespace(id=batch_id, created_at=created_at, status="in_progress", errors=None,
                               request_counts=None, expires_at=None)

    async def pages(**kwargs: Any) -> Any:
        for listed in (batch("b3", 300), batch("b2", None), batch("b1", 100), batch("b0", 10)):
            yield listed

    client = SimpleNamespace(batches=SimpleNamespace(list=pages))
    adapter = OpenAIBatches(client)  # type: ignore[arg-type]
    assert [batch_id async for batch_id, _ in adapter.listed(since=50)] == ["b3", "b1"]
