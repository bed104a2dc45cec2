"""The interface every batch provider adapter implements, and its errors.

Errors carry their behaviour as a class attribute (``retryable``), so callers
branch on a property rather than on a chain of ``isinstance`` checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Protocol

import orjson

from core.limits import BatchGroup
from core.outcomes import ItemOutcome
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
    "BatchNotFound",
    "ItemsRefused",
    "AccountRefused",
    "NotYetKnown",
    "split_lines",
    "ResultFormat",
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
    """The provider has no room for another batch now (a quota of batches in progress, a queue or a
    rate of creates full, capacity short): not a failure, nothing was created; ask again later."""


class BatchRejected(ProviderError):
    """The provider refused the whole batch: each item fails, none is retried as is."""

    retryable = False


class ItemsRefused(BatchRejected):
    """The provider refused the batch for what some items hold: those fail, the others go again.

    ``culprits`` maps the index of each item it named (0-based, in the batch input) to its
    reason; empty when it named none, and the batch is then split in halves to find them.
    """

    def __init__(self, message: str, culprits: dict[int, str] | None = None) -> None:
        super().__init__(message)
        self.culprits = culprits or {}


class BatchNotFound(ProviderError):
    """The provider answered 404 for a batch it created: right after a create the real APIs are known
    to, for a while; past ``TIERLINE_NOT_FOUND_GRACE_S`` the batch is taken to be gone."""


class AccountRefused(ProviderError):
    """Refused for the account's sake (authentication, permission, billing), not the items':
    nothing fails; the batch waits, with an alert, until the cause is fixed."""

    retryable = False


class NotYetKnown(Exception):
    """``find`` cannot tell yet whether a batch is the one looked for: one of the same shape, created a
    moment ago, may be another worker's that it has not recorded yet. Ask again after ``retry_in_s``,
    with the batch log's claims read again."""

    def __init__(self, retry_in_s: float, candidates: list[str],
                 why: str = "another worker may not have recorded it yet") -> None:
        shape = "a batch of the same shape" if len(candidates) == 1 else "batches of the same shape"
        super().__init__(f"{shape} ({', '.join(candidates)}) cannot be known whose yet: {why}")
        self.retry_in_s = retry_in_s


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """A closed batch on disk: its folder holds the provider's input lines (``input.jsonl``) and each
    item's context (``items.jsonl``).

    The folder is kept as a string and its paths made when asked for: a worker holds one of these for
    every batch in flight, hours long, and a ``Path`` keeps its parts besides its text (~350 bytes).
    """

    key: str
    group: BatchGroup
    folder: str
    count: int
    size_bytes: int

    @property
    def input_path(self) -> Path:
        return Path(self.folder, "input.jsonl")

    @property
    def items_path(self) -> Path:
        return Path(self.folder, "items.jsonl")


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
    refused: dict[int, str] | None = None  # refused at validation for these items (input index → reason)
    #: Failed because the provider's queue for the model was full (OpenAI's enqueued-token limit): the
    #: provider's words. Nothing is wrong with the items: they go again later, no attempt counted.
    queue_full: str | None = None
    #: Failed at validation for holding fewer items than the account's minimum per batch (Bedrock's, when it is
    #: above ``TIERLINE_BEDROCK_MIN_RECORDS``): that minimum. Nothing is wrong with the items.
    below_minimum: int | None = None
    #: (requests done, requests in all) of a running batch, where the provider counts them as they run (OpenAI,
    #: Bedrock; Anthropic's counts stay at zero until the end): when to poll it next (``core.deadlines``).
    progress: tuple[int, int] | None = None


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

    #: How its result lines are read.
    result_format: ResultFormat

    def result_lines(self, batch_id: str) -> AsyncIterator[list[bytes]]:
        """Every line of an ended batch's result files, in the provider's order, as it wrote them, in runs
        as they arrive (``split_lines``): ``result_format`` reads one."""

    async def cancel(self, batch_id: str) -> None: ...

    async def discard_input(self, batch_id: str) -> None:
        """The batch's results are durable on Kafka: delete what tierline uploaded for it, if anything."""

    async def close(self) -> None: ...


async def split_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """The non-empty lines of a streamed JSONL body, those each chunk completes at once: split in bulk rather
    than by httpx's line decoder, and handed on in runs rather than one await a line."""
    pending = b""
    async for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        if run := [line for line in lines if line and not line.isspace()]:
            yield run
    if pending and not pending.isspace():
        yield [pending]


@dataclass(frozen=True, slots=True)
class ResultFormat:
    """How a provider's result lines are read: ``id_field`` names the item's id at a line's top level, and
    ``read`` makes an outcome of a parsed line."""

    id_field: str
    read: Callable[[dict[str, Any]], ItemOutcome]

    def outcome(self, line: bytes) -> ItemOutcome | str:
        """A result line as an outcome, or why it is no result: not JSON, not an object, fields of the wrong
        types. Its item then counts as missing, and is retried alone."""
        try:
            doc = orjson.loads(line)
            outcome = self.read(doc) if isinstance(doc, dict) else None
        except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        return outcome if outcome is not None and isinstance(outcome.custom_id, str) else "not a result object"

    def leading_id(self, line: bytes) -> bytes | None:
        """The item's id (UTF-8) read from the line's bytes, where that gives what parsing would: the id field
        is named once in the line and in no escaped spelling (no ``\\u`` at all), only members of plain
        values come before it (OpenAI's ``"id"``), and its own value has no escape. Otherwise None: parse."""
        if (_BACKSLASH in line and b"\\u" in line) or line.count(_quoted(self.id_field)) != 1:
            return None
        match = _leading(self.id_field).match(line)
        return match[1] if match else None


_BACKSLASH = ord("\\")  # looked for as a byte, by memchr: ten times quicker than for b"\\u"


@cache
def _quoted(name: str) -> bytes:
    return b'"' + name.encode() + b'"'


@cache
def _leading(name: str) -> re.Pattern[bytes]:
    """An object whose member ``name`` has a string value, with only plain members (a string without escapes,
    or a number, true, false or null) before it."""
    plain = rb'"[^"\\]*"\s*:\s*(?:"[^"\\]*"|[\w.+-]+)\s*,\s*'
    return re.compile(rb'\s*\{\s*(?:' + plain + rb')*?' + re.escape(_quoted(name)) + rb'\s*:\s*"([^"\\]*)"')
