"""Batches on local disk: the provider's input lines, each item's context, and its results.

Items are appended as they arrive, so a batch of any size is never held in
memory; the submitter streams the input file to the provider as it is. A batch's
results are downloaded whole to ``outcomes.jsonl`` before any event is emitted
(``download_outcomes``): a download that breaks half way is simply done again, and
no item's event goes out twice for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import IO, AsyncIterator, Iterator

import orjson

from core.limits import BatchGroup
from core.outcomes import ItemContext, ItemOutcome
from core.window import OpenBatch
from providers.base import SpooledBatch
from schemas import ErrorInfo

__all__ = ["Spool", "read_contexts", "download_outcomes", "read_outcomes_back"]

WRITE_BUFFER = 1 << 20


class Spool:
    """One directory per batch key with ``input.jsonl`` and ``items.jsonl``."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._open: dict[str, tuple[IO[bytes], IO[bytes]]] = {}
        root.mkdir(parents=True, exist_ok=True)

    def append(self, batch_key: str, line: bytes, context: bytes) -> None:
        files = self._open.get(batch_key)
        if files is None:
            folder = self._root / batch_key
            folder.mkdir(parents=True, exist_ok=True)
            files = (folder / "input.jsonl").open("wb"), (folder / "items.jsonl").open("wb")
            self._open[batch_key] = files
        files[0].write(line + b"\n")
        files[1].write(context + b"\n")

    def close(self, batch: OpenBatch) -> SpooledBatch:
        return self.finish(batch.key, batch.group, batch.count, batch.size_bytes)

    def finish(self, batch_key: str, group: BatchGroup, count: int, size_bytes: int) -> SpooledBatch:
        """No more items for this batch: close its files and describe it."""
        for handle in self._open.pop(batch_key, ()):
            handle.close()
        folder = self._root / batch_key
        return SpooledBatch(batch_key, group, folder / "input.jsonl", folder / "items.jsonl", count, size_bytes)

    def discard_open(self) -> int:
        """Drop every batch still being filled (its items will be read again); return how many."""
        keys = list(self._open)
        for key in keys:
            self.remove(key)
        return len(keys)

    def remove(self, batch_key: str) -> None:
        for handle in self._open.pop(batch_key, ()):
            handle.close()
        shutil.rmtree(self._root / batch_key, ignore_errors=True)


def read_contexts(spooled: SpooledBatch) -> Iterator[ItemContext]:
    """Each item's context, in the batch's order, streamed from its spool file."""
    with spooled.items_path.open("rb") as lines:
        for raw in lines:
            yield ItemContext.decode(orjson.loads(raw))


async def download_outcomes(outcomes: AsyncIterator[ItemOutcome], spooled: SpooledBatch) -> Path:
    """Write every outcome to the batch's folder; the file is there only once the download is whole."""
    final = spooled.items_path.parent / "outcomes.jsonl"
    partial = final.with_suffix(".partial")
    with partial.open("wb", buffering=WRITE_BUFFER) as out:
        async for outcome in outcomes:
            out.write(orjson.dumps(outcome) + b"\n")
    partial.replace(final)
    return final


async def read_outcomes_back(path: Path) -> AsyncIterator[ItemOutcome]:
    """The outcomes ``download_outcomes`` wrote, in their order."""
    with path.open("rb") as lines:
        for raw in lines:
            doc = orjson.loads(raw)
            error = doc["error"]
            yield ItemOutcome(doc["custom_id"], doc["response"], doc["usage"],
                              ErrorInfo(type=error["type"], message=error["message"]) if error else None,
                              doc["retryable"])
