"""OpenAI Batch API: upload the spooled JSONL file, create, poll, read output and error files."""

from __future__ import annotations

import functools
from typing import Any, AsyncGenerator, AsyncIterator

import httpx2  # the SDK's own HTTP client: what a body broken off half way raises
import openai
import structlog
from openai.types import Batch

from providers.base import (CLOCK_SKEW_S, BatchStatus, ProviderBusy, ProviderUnavailable, SpooledBatch,
                            split_lines)
from providers.errors import meaning, said_by_sdk
from providers.openai.errors import WORDS
from providers.openai.wire import RESULTS

__all__ = ["OpenAIBatches"]

log = structlog.get_logger(__name__)

ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
#: Errors of a failed batch that say the model's queue was full, not that anything is wrong with it.
QUEUE_FULL = frozenset({"token_limit_exceeded"})
LIST_PAGE = 100  # the most the list call gives a page


class OpenAIBatches:
    """Adapter over ``openai.AsyncOpenAI`` (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``), or over any service of
    the same Files + Batch shape (``providers.lanes``): what differs is given, never branched on by name.

    ``output_expires_s``: None leaves ``output_expires_after`` out of the create (services that lack it).
    ``metadata``: False when the service refuses it; an orphan is then found by its input file's name.
    """

    def __init__(self, client: openai.AsyncOpenAI | None = None, output_expires_s: int | None = 7 * 86_400,
                 keep_input_files: bool = False, name: str = "openai", purpose: str = "batch",
                 metadata: bool = True, completion_window: str = "24h") -> None:
        self._client = client or openai.AsyncOpenAI()
        self.result_format = RESULTS
        self.name = name
        self._output_expires_s = output_expires_s
        self._keep_input_files = keep_input_files
        self._purpose = purpose
        self._metadata = metadata
        self._completion_window = completion_window
        self._files: dict[str, tuple[str | None, str | None]] = {}

    @functools.cached_property
    def _no_retries(self) -> openai.AsyncOpenAI:
        """The client for creates, which only the submitter may repeat (it looks for the batch first). Made
        once: a copy per call is a client and its resources in reference cycles, left to the collector."""
        return self._client.with_options(max_retries=0)

    async def submit(self, batch: SpooledBatch) -> str:
        assert batch.group.endpoint is not None
        try:
            # The SDK streams an open file in the multipart body: the batch is never in memory whole.
            with batch.input_path.open("rb") as data:
                uploaded = await self._client.files.create(
                    file=(f"{batch.key}.jsonl", data), purpose=self._purpose  # type: ignore[arg-type]
                )
        except openai.APIError as exc:
            raise meaning(said_by_sdk(exc), WORDS, creating=True) from exc
        try:
            # No retries inside the SDK: a create that timed out may have succeeded.
            created = await self._no_retries.batches.create(
                input_file_id=uploaded.id,
                endpoint=batch.group.endpoint,  # type: ignore[arg-type]
                completion_window=self._completion_window,  # type: ignore[arg-type]
                **self._create_options(batch.key),
            )
        except openai.APIError as exc:
            error = meaning(said_by_sdk(exc), WORDS, creating=True)
            if not error.retryable or isinstance(error, ProviderBusy):  # surely not created: the file is no use
                await self._delete_quietly(uploaded.id)
            raise error from exc
        return created.id

    def _create_options(self, batch_key: str) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self._metadata:
            options["metadata"] = {"tierline_batch_key": batch_key}
        if self._output_expires_s is not None:
            options["output_expires_after"] = {"anchor": "created_at", "seconds": self._output_expires_s}
        return options

    async def _delete_quietly(self, file_id: str) -> None:
        try:
            await self._client.files.delete(file_id)
        except openai.APIError:
            pass  # storage left behind, not a failure

    async def find(self, batch: SpooledBatch, since: float, claimed: set[str]) -> str | None:
        # Batches are listed newest first; ours carries its batch key in metadata, or in its file's name.
        try:
            async for listed in self._client.batches.list(limit=100):
                if listed.created_at < since - CLOCK_SKEW_S:
                    return None
                if listed.id not in claimed and await self._is_for(listed, batch.key):
                    return listed.id
        except openai.APIError as exc:
            raise meaning(said_by_sdk(exc), WORDS) from exc
        return None

    async def _is_for(self, listed: Any, batch_key: str) -> bool:
        if self._metadata:
            return (listed.metadata or {}).get("tierline_batch_key") == batch_key
        try:
            return (await self._client.files.retrieve(listed.input_file_id)).filename == f"{batch_key}.jsonl"
        except openai.NotFoundError:
            return False  # its input file was deleted: a batch whose results were taken

    async def status(self, batch_id: str) -> BatchStatus:
        try:
            batch = await self._client.batches.retrieve(batch_id)
        except openai.APIError as exc:
            raise meaning(said_by_sdk(exc), WORDS) from exc
        self._files[batch_id] = (batch.output_file_id, batch.error_file_id)  # till its results are read
        return _status_of(batch)

    async def listed(self, since: float) -> AsyncGenerator[tuple[str, BatchStatus], None]:
        try:
            async for batch in self._client.batches.list(limit=LIST_PAGE):
                try:
                    created, status = float(batch.created_at), _status_of(batch)
                except (AttributeError, TypeError, ValueError) as exc:  # an odd entry: that batch is asked alone
                    log.warning("listed_batch_unreadable", batch_id=getattr(batch, "id", None), error=repr(exc)[:200])
                    continue
                if created < since:
                    return
                yield batch.id, status
        except openai.APIError as exc:
            raise meaning(said_by_sdk(exc), WORDS) from exc

    async def result_lines(self, batch_id: str) -> AsyncIterator[list[bytes]]:
        # Expired and cancelled batches can hold finished work: read both files whatever the status.
        files = self._files.pop(batch_id, None)
        if files is None:  # known from a listing, which does not keep files: asked for once
            await self.status(batch_id)
            files = self._files.pop(batch_id, (None, None))
        for file_id in files:
            if not file_id:
                continue
            try:
                async with self._client.files.with_streaming_response.content(file_id) as response:
                    async for run in split_lines(response.iter_bytes()):
                        yield run
            except openai.APIError as exc:
                raise meaning(said_by_sdk(exc), WORDS) from exc
            except httpx2.HTTPError as exc:  # the body broke off half way: the SDK does not wrap that
                raise ProviderUnavailable(f"the results download broke off: {exc!r}") from exc

    async def discard_input(self, batch_id: str) -> None:
        """The batch's results are on Kafka: its uploaded input file is of no more use (unless kept)."""
        if self._keep_input_files:
            return
        try:
            batch = await self._client.batches.retrieve(batch_id)
            await self._client.files.delete(batch.input_file_id)
        except openai.NotFoundError:
            pass  # already gone
        except openai.APIError as exc:
            raise meaning(said_by_sdk(exc), WORDS) from exc

    async def cancel(self, batch_id: str) -> None:
        try:
            await self._client.batches.cancel(batch_id)
        except openai.APIError as exc:
            raise meaning(said_by_sdk(exc), WORDS) from exc

    async def close(self) -> None:
        await self._client.close()


def _status_of(batch: Batch) -> BatchStatus:
    counts = batch.request_counts.model_dump() if batch.request_counts else {}
    rejection, refused = None, None
    if batch.status == "failed":
        errors = batch.errors.data if batch.errors and batch.errors.data else []
        rejection = "; ".join(
            f"{e.code}: {e.message}" + (f" (line {e.line})" if e.line else "") for e in errors[:5]
        ) or "the batch failed validation"
        # Errors that name a line are about that item; any other is about the whole batch.
        if errors and all(isinstance(e.line, int) and e.line >= 1 for e in errors):
            refused = {e.line - 1: f"{e.code}: {e.message}" for e in errors}  # type: ignore[operator]
        elif errors and all(e.code in QUEUE_FULL for e in errors):
            return BatchStatus(batch.status, True, counts, expires_at=batch.expires_at, queue_full=rejection)
    progress = None
    if batch.status == "in_progress" and batch.request_counts and batch.request_counts.total:
        progress = (batch.request_counts.completed + batch.request_counts.failed, batch.request_counts.total)
    return BatchStatus(batch.status, batch.status in ENDED, counts, rejection, batch.expires_at,
                       cancelled=batch.status == "cancelled", refused=refused, progress=progress)


