"""Gemini Batch API through ``google-genai``: upload the spooled JSONL file, create a job, poll, read its results.

Credentials and address come from the SDK's own environment (``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``,
``GOOGLE_GEMINI_BASE_URL``). The job's ``display_name`` is the batch key: a worker that crashed between
the create and recording the job's name finds the job by it. Results are read by each line's ``key``,
never by position (the service is known to answer out of order). The SDK's own retries stay off: a
create retried inside it could make a second job, and the agents decide when to ask again.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import httpx2  # google-genai's HTTP client, besides aiohttp
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from google.genai.client import AsyncClient

from providers.base import (CLOCK_SKEW_S, AccountRefused, BatchStatus, ProviderBusy, ProviderError, ProviderUnavailable,
                            SpooledBatch, split_lines)
from providers.errors import meaning
from providers.gemini.errors import WORDS, said_by_genai
from providers.gemini.wire import RESULTS
from schemas import ErrorInfo

#: What the SDK raises when the service answered with an error (``APIError``) or did not answer at all. Anything
#: else is a fault of tierline's own (or the SDK's), never read as the provider's: the agents retry the batch
#: with a ``submit_failed`` or ``poll_failed`` alert rather than waiting for a provider that is not at fault.
SDK_FAILURES: tuple[type[BaseException], ...] = (genai_errors.APIError, aiohttp.ClientError, asyncio.TimeoutError,
                                                 OSError, httpx2.TransportError)

__all__ = ["GeminiBatches", "translate"]

ENDED = frozenset({"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED", "JOB_STATE_FAILED",
                   "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"})
#: How long a job may take before the service expires it (reported; the target is 24 h).
EXPIRES_AFTER_S = 48 * 3600.0
_CHUNK = 1 << 20


class GeminiBatches:
    """Adapter over ``genai.Client().aio``."""

    name = "gemini"

    def __init__(self, client: genai.Client | None = None, scratch_dir: Path | None = None,
                 keep_input_files: bool = False, webhook_uri: str = "") -> None:
        self._client = client
        #: Where Gemini announces the job's end (``webhook_config``), if anywhere (``agents.take_webhooks``).
        self._webhook = genai_types.WebhookConfig(uris=[webhook_uri]) if webhook_uri else None
        self.result_format = RESULTS
        self._scratch_dir = scratch_dir
        self._keep_input_files = keep_input_files

    @property
    def _aio(self) -> AsyncClient:
        """The SDK's async client, made when first needed: without a key, the account's refusal."""
        if self._client is None:
            try:
                self._client = genai.Client()
            except ValueError as exc:
                raise AccountRefused(f"no Gemini API key: set GEMINI_API_KEY or GOOGLE_API_KEY ({exc})") from exc
        return self._client.aio

    async def submit(self, batch: SpooledBatch) -> str:
        assert batch.group.model is not None
        aio = self._aio
        try:
            # The SDK sends an open file in 8 MB chunks (resumable upload): never whole in memory.
            with batch.input_path.open("rb") as data:
                uploaded = await aio.files.upload(file=data, config=genai_types.UploadFileConfig(
                    display_name=batch.key, mime_type="jsonl"))
        except SDK_FAILURES as exc:
            raise translate(exc, creating=True) from exc
        assert uploaded.name is not None
        try:
            job = await aio.batches.create(model=batch.group.model, src=uploaded.name,
                                           config=genai_types.CreateBatchJobConfig(display_name=batch.key,
                                                                                   webhook_config=self._webhook))
        except SDK_FAILURES as exc:
            error = translate(exc, creating=True)
            if not error.retryable or isinstance(error, ProviderBusy):  # surely not created: the file is no use
                await self._delete_quietly(uploaded.name)
            raise error from exc
        assert job.name is not None
        return job.name

    async def _delete_quietly(self, file_name: str) -> None:
        try:
            await self._aio.files.delete(name=file_name)
        except SDK_FAILURES:  # storage left behind (the service deletes files after 48 h), no failure
            pass

    async def find(self, batch: SpooledBatch, since: float, claimed: set[str]) -> str | None:
        try:
            pager = await self._aio.batches.list(config=genai_types.ListBatchJobsConfig(page_size=100))
            async for job in pager:
                created = _epoch(job.create_time)
                if created is not None and created < since - CLOCK_SKEW_S:
                    continue
                if job.display_name == batch.key and job.name and job.name not in claimed:
                    return job.name
        except SDK_FAILURES as exc:
            raise translate(exc) from exc
        return None

    async def status(self, batch_id: str) -> BatchStatus:
        job = await self._job(batch_id)
        state = str(job.state.value if job.state is not None else "JOB_STATE_UNSPECIFIED")
        created = _epoch(job.create_time)
        expires_at = created + EXPIRES_AFTER_S if created is not None else None
        unrun = None
        if state == "JOB_STATE_EXPIRED":
            unrun = ErrorInfo(type="batch_expired", message="the Gemini batch job expired before this request ran")
        elif state == "JOB_STATE_FAILED":
            unrun = ErrorInfo(type="batch_failed", message="the Gemini batch job failed before this request ran")
        return BatchStatus(state, state in ENDED, {}, expires_at=expires_at, unrun=unrun,
                           cancelled=state == "JOB_STATE_CANCELLED")

    async def _job(self, batch_id: str) -> genai_types.BatchJob:
        try:
            return await self._aio.batches.get(name=batch_id)
        except SDK_FAILURES as exc:
            raise translate(exc) from exc

    async def result_lines(self, batch_id: str) -> AsyncIterator[list[bytes]]:
        # A failed, cancelled or expired job can hold finished work: read its file whatever the state.
        job = await self._job(batch_id)
        file_name = job.dest.file_name if job.dest is not None else None
        if not file_name:
            return
        with tempfile.TemporaryDirectory(prefix="gemini-results-", dir=self._scratch_dir) as scratch:
            path = Path(scratch) / "results.jsonl"
            try:  # streamed to disk by the SDK, then read from there: never whole in memory
                await self._aio.files.download(file=file_name, destination=str(path))
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                raise ProviderUnavailable(f"the results download broke off: {exc!r}") from exc
            except SDK_FAILURES as exc:
                raise translate(exc) from exc
            async for run in split_lines(_chunks(path)):
                yield run

    async def discard_input(self, batch_id: str) -> None:
        """The job's results are on Kafka: delete the input file uploaded for it (named by its batch key)."""
        if self._keep_input_files:
            return
        job = await self._job(batch_id)
        try:
            async for stored in await self._aio.files.list(config=genai_types.ListFilesConfig(page_size=100)):
                if stored.display_name == job.display_name and stored.name:
                    await self._delete_quietly(stored.name)
        except SDK_FAILURES as exc:
            raise translate(exc) from exc

    async def cancel(self, batch_id: str) -> None:
        try:
            await self._aio.batches.cancel(name=batch_id)
        except SDK_FAILURES as exc:
            raise translate(exc) from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aio.aclose()


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as data:
        while chunk := data.read(_CHUNK):
            yield chunk


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def translate(exc: BaseException, creating: bool = False) -> ProviderError:
    """A google-genai failure (``SDK_FAILURES``) as ours (``providers.errors``, in Gemini's words)."""
    return meaning(said_by_genai(exc), WORDS, creating=creating)
