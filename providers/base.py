"""The interface every batch provider adapter implements, and its errors.

Errors carry their behaviour as a class attribute (``retryable``), so callers
branch on a property rather than on a chain of ``isinstance`` checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Protocol

from core.limits import BatchGroup
from schemas import ErrorInfo

__all__ = [
    "SpooledBatch",
    "BatchStatus",
    "ItemOutcome",
    "BatchProvider",
    "ProviderError",
    "ProviderUnavailable",
    "ProviderBusy",
    "BatchRejected",
    "split_lines",
    "CLOCK_SKEW_S",
]

Json = dict[str, Any]

#: How far a provider's clock may be behind ours when matching creation times.
CLOCK_SKEW_S = 5.0


class ProviderError(Exception):
    """Base of every provider failure."""

    retryable = False


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or failed on its side: try again later."""

    retryable = True


class ProviderBusy(ProviderUnavailable):
    """The provider has no room for another batch now (a quota of batches in progress): not a failure."""


class BatchRejected(ProviderError):
    """The provider refused the whole batch: each item fails, none is retried as is."""

    retryable = False


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """A closed batch on disk: the provider's input lines and each item's context."""

    key: str
    group: BatchGroup
    input_path: Path
    items_path: Path
    count: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """What the provider says of a submitted batch."""

    status: str
    ended: bool
    counts: Json
    rejection: str | None = None  # set when the provider refused the batch at validation
    expires_at: float | None = None  # when the provider says it expires the batch, if it said
    unrun: ErrorInfo | None = None  # what an item missing from the results means, if the status says
    cancelled: bool = False  # it ended because it was cancelled (tierline cancel, or at the provider)


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """One item's line in the provider's results: a response, or an error."""

    custom_id: str
    response: Json | None
    usage: Json | None
    error: ErrorInfo | None
    retryable: bool = False


class BatchProvider(Protocol):
    """Submit a spooled batch, follow it, read its results, cancel it."""

    name: str

    async def submit(self, batch: SpooledBatch) -> str:
        """Create the batch at the provider; return the provider's batch id."""

    async def find(self, batch: SpooledBatch, since: float, claimed: set[str]) -> str | None:
        """The id of a batch created for ``batch`` at or after ``since`` (epoch seconds), if any.

        Batches in ``claimed`` belong to other batch records and are never the answer.

        After a crash between the provider creating a batch and tierline recording its id,
        this is how the batch is found again instead of being created twice.
        """

    async def status(self, batch_id: str) -> BatchStatus: ...

    def results(self, batch_id: str) -> AsyncIterator[ItemOutcome]:
        """Every result line of an ended batch, streamed, in the provider's order."""

    async def cancel(self, batch_id: str) -> None: ...

    async def close(self) -> None: ...


async def split_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Non-empty lines of a streamed JSONL body, split in bulk rather than by httpx's line decoder."""
    pending = b""
    async for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def translate_sdk_error(exc: Exception) -> ProviderError:
    """Map an SDK exception to ours: no HTTP answer or a retryable status → unavailable."""
    from core.retry import is_retryable

    status = getattr(exc, "status_code", None)
    message = str(getattr(exc, "message", None) or exc)
    if status is None or is_retryable("", status):
        return ProviderUnavailable(message)
    return BatchRejected(f"HTTP {status}: {message}")
