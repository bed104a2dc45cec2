"""Anthropic Message Batches: create from the spooled lines, poll, stream the results."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import AsyncGenerator, AsyncIterator

import anthropic
import httpx2  # the SDK's own HTTP client: what a body broken off half way raises
import orjson
import structlog
from anthropic.types.messages import MessageBatch

from providers.base import (CLOCK_SKEW_S, BatchStatus, NotYetKnown, ProviderUnavailable, SpooledBatch, split_lines)
from providers.anthropic.errors import WORDS
from providers.anthropic.wire import RESULTS
from providers.errors import meaning, said_by_sdk

__all__ = ["AnthropicBatches"]

log = structlog.get_logger(__name__)

_HEAD, _TAIL = b'{"requests":[', b"]}"
_CHUNK = 1 << 20
LIST_PAGE = 1_000  # the most the list call gives a page
#: How long after its creation a batch may still be waiting to be recorded by the worker that created it
#: (it records the id as soon as the create answers: a Kafka write).
RECORD_GRACE_S = 30.0
#: How often a resumed intent looks again at an unrecorded batch of its size that has not ended yet.
ENDED_WAIT_S = 60.0


class AnthropicBatches:
    """Adapter over ``anthropic.AsyncAnthropic`` (``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``), or the client
    given: any service that speaks the Message Batches API (``name``: the provider it is, as the logs say)."""

    def __init__(self, client: anthropic.AsyncAnthropic | None = None, name: str = "anthropic") -> None:
        self.name = name
        self._client = client or anthropic.AsyncAnthropic()
        self.result_format = RESULTS

    @functools.cached_property
    def _no_retries(self) -> anthropic.AsyncAnthropic:
        """The client for creates. Made once: a copy per call is a client left in reference cycles."""
        return self._client.with_options(max_retries=0)

    async def submit(self, batch: SpooledBatch) -> str:
        # The body is streamed from the spool file, so the SDK must not retry on its own:
        # a consumed stream cannot be sent twice. The submitter retries instead.
        size = batch.input_path.stat().st_size
        length = len(_HEAD) + max(size - 1, 0) + len(_TAIL)
        try:
            created = await self._no_retries.post(
                "/v1/messages/batches",
                cast_to=MessageBatch,
                content=_body(batch.input_path),
                options={"headers": {"Content-Type": "application/json", "Content-Length": str(length)}},
            )
        except anthropic.AnthropicError as exc:  # APIError, and the SDK's own checks
            raise meaning(said_by_sdk(exc), WORDS, creating=True, about_items=True) from exc
        return created.id

    async def find(self, batch: SpooledBatch, since: float, claimed: set[str]) -> str | None:
        # Anthropic batches carry no metadata: candidates are those of the same request count created
        # after ``since`` (or a little before: clock skew). tierline's own batches are told apart by the
        # batch log (``claimed``), once recorded: a worker records its batch's id as soon as it is created,
        # so while a candidate is younger than RECORD_GRACE_S it may be another live worker's, and nothing
        # is decided (NotYetKnown). An unrecorded candidate is ours only if its results name our
        # custom_ids: it is read once it has ended, and until then nothing is decided either. Two intents
        # of the same size resumed together (a worker cut off after creating one) would otherwise both
        # take the one batch for theirs.
        after: list[tuple[float, str]] = []
        around: list[tuple[float, str]] = []
        ended: dict[str, bool] = {}
        try:
            async for listed in self._client.messages.batches.list(limit=100):
                created = listed.created_at.timestamp()
                if created < since - CLOCK_SKEW_S:
                    break
                if listed.id not in claimed and sum(listed.request_counts.model_dump().values()) == batch.count:
                    (after if created >= since else around).append((created, listed.id))
                    ended[listed.id] = listed.processing_status == "ended"
        except anthropic.AnthropicError as exc:  # APIError, and the SDK's own checks
            raise meaning(said_by_sdk(exc), WORDS) from exc
        candidates = sorted(after) + sorted(around, reverse=True)
        if candidates and (young := time.time() - max(created for created, _ in candidates)) < RECORD_GRACE_S:
            raise NotYetKnown(RECORD_GRACE_S - young, [batch_id for _, batch_id in candidates])
        with batch.input_path.open("rb") as lines:  # the requests as sent: each names its custom_id
            ids = {orjson.loads(line)["custom_id"] for line in lines}
        for _, batch_id in candidates:
            if ended[batch_id] and await self._holds(batch_id, ids):
                return batch_id
        if unended := [batch_id for _, batch_id in candidates if not ended[batch_id]]:
            raise NotYetKnown(ENDED_WAIT_S, unended, "whose items it holds is read from its results once it ends")
        return None

    async def _holds(self, batch_id: str, custom_ids: set[str]) -> bool:
        """Whether an ended batch's results are those of ``custom_ids``."""
        named = {orjson.loads(line).get("custom_id") async for run in self.result_lines(batch_id) for line in run}
        return named == custom_ids

    async def status(self, batch_id: str) -> BatchStatus:
        try:
            return _status_of(await self._client.messages.batches.retrieve(batch_id))
        except anthropic.AnthropicError as exc:  # APIError, and the SDK's own checks
            raise meaning(said_by_sdk(exc), WORDS) from exc

    async def listed(self, since: float) -> AsyncGenerator[tuple[str, BatchStatus], None]:
        try:
            async for batch in self._client.messages.batches.list(limit=LIST_PAGE):
                try:
                    created, status = batch.created_at.timestamp(), _status_of(batch)
                except (AttributeError, TypeError, ValueError) as exc:  # an odd entry: that batch is asked alone
                    log.warning("listed_batch_unreadable", batch_id=getattr(batch, "id", None), error=repr(exc)[:200])
                    continue
                if created < since:
                    return
                yield batch.id, status
        except anthropic.AnthropicError as exc:  # APIError, and the SDK's own checks
            raise meaning(said_by_sdk(exc), WORDS) from exc

    async def result_lines(self, batch_id: str) -> AsyncIterator[list[bytes]]:
        # Raw lines rather than the SDK's parsed models: the event carries the provider's own body.
        try:
            async with self._client.messages.batches.with_streaming_response.results(batch_id) as response:
                async for run in split_lines(response.iter_bytes()):
                    yield run
        except anthropic.AnthropicError as exc:  # APIError, and the SDK's own checks
            raise meaning(said_by_sdk(exc), WORDS) from exc
        except httpx2.HTTPError as exc:  # the body broke off half way: the SDK does not wrap that
            raise ProviderUnavailable(f"the results download broke off: {exc!r}") from exc

    async def discard_input(self, batch_id: str) -> None:
        pass  # the requests went in the create call itself: nothing was uploaded

    async def cancel(self, batch_id: str) -> None:
        try:
            await self._client.messages.batches.cancel(batch_id)
        except anthropic.AnthropicError as exc:  # APIError, and the SDK's own checks
            raise meaning(said_by_sdk(exc), WORDS) from exc

    async def close(self) -> None:
        await self._client.close()


async def _body(path: Path) -> AsyncIterator[bytes]:
    """``{"requests":[line,line,...]}`` from a file of newline-terminated lines."""
    yield _HEAD
    with path.open("rb") as lines:
        pending = b""
        while chunk := lines.read(_CHUNK):
            data = (pending + chunk).replace(b"\n", b",")
            # Hold back the last separator: the file's final newline must not become a comma.
            yield data[:-1]
            pending = data[-1:]
        if pending and pending != b",":
            yield pending
    yield _TAIL


def _status_of(batch: MessageBatch) -> BatchStatus:
    return BatchStatus(batch.processing_status, batch.processing_status == "ended", batch.request_counts.model_dump(),
                       expires_at=batch.expires_at.timestamp(), cancelled=batch.request_counts.canceled > 0)


