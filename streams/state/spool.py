"""Batches on local disk: the provider's input lines, each item's context, and its results.

Items are appended as they arrive, so a batch of any size is never held in
memory; the submitter streams the input file to the provider as it is. A batch's
result lines are downloaded whole to ``outcomes/``, as the provider wrote them, before
any event is emitted (``download_outcomes``): a download that breaks half way is simply
done again, and no item's event goes out twice for it.

Settling matches each result with its item's context by custom_id, so it holds the
contexts of the items it matches in memory. A batch of more than ``PART_ITEMS`` items
is therefore settled in parts: its outcomes are downloaded, and its contexts split,
into files by a hash of the custom_id (``part_of``), and one part is matched at a
time, in memory bounded whatever the batch's size.
"""

from __future__ import annotations

import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, AsyncIterator, Iterator

import orjson
import structlog

from core.limits import BatchGroup
from core.outcomes import ItemContext, ItemOutcome
from core.window import OpenBatch
from providers.base import ResultFormat, SpooledBatch

__all__ = ["Spool", "read_contexts", "download_outcomes", "Downloaded", "part_of", "context_part",
           "result_part", "parts_for"]

log = structlog.get_logger(__name__)

WRITE_BUFFER = 1 << 20
PART_ITEMS = 5_000  # the most contexts settling holds at once, about 2 MB of them


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
        return SpooledBatch(batch_key, group, str(self._root / batch_key), count, size_bytes)

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


def read_contexts(path: Path) -> Iterator[ItemContext]:
    """Each item's context, in the batch's order, streamed from its spool file (or one part of it)."""
    with path.open("rb") as lines:
        for raw in lines:
            yield ItemContext.decode(orjson.loads(raw))


def parts_for(count: int) -> int:
    """Into how many parts a batch of ``count`` items is settled."""
    return max(1, -(-count // PART_ITEMS))


def part_of(custom_id: str, parts: int) -> int:
    """The part an item is settled in: the same for its context and its outcome, on every run."""
    return zlib.crc32(custom_id.encode()) % parts if parts > 1 else 0


_CONTEXT_HEAD = b'{"custom_id":"'


def context_part(line: bytes, parts: int) -> int:
    """``part_of`` a context line's item, read from the line as ``ItemContext.encode`` writes it (custom_id
    first) without parsing it; a line of another shape, or an id with an escape in it, is parsed."""
    if line.startswith(_CONTEXT_HEAD):
        end = line.find(b'"', len(_CONTEXT_HEAD))
        raw_id = line[len(_CONTEXT_HEAD):end]
        if end > 0 and b"\\" not in raw_id:  # orjson writes any other character of an id as its UTF-8
            return zlib.crc32(raw_id) % parts
    return part_of(orjson.loads(line)["custom_id"], parts)


def result_part(line: bytes, parts: int, result_format: ResultFormat) -> int:
    """``part_of`` a result line's item: its id read from the bytes where that is exact, else parsed. A line
    that is no result may go to any part: it is left out as it is read back."""
    if (raw_id := result_format.leading_id(line)) is not None:
        return zlib.crc32(raw_id) % parts
    outcome = result_format.outcome(line)
    return 0 if isinstance(outcome, str) else part_of(outcome.custom_id, parts)


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A batch's result lines on disk, one file per part, and where its contexts are split to match."""

    spooled: SpooledBatch
    folder: Path
    parts: int
    result_format: ResultFormat  # the provider adapter's

    def outcomes(self, part: int) -> Iterator[ItemOutcome]:
        """The outcomes of one part, in the order the provider gave them; a line that is no result is logged
        and left out (its item counts as missing)."""
        outcome_of = self.result_format.outcome
        with (self.folder / f"part-{part}.jsonl").open("rb") as lines:
            for line in lines:
                outcome = outcome_of(line)
                if isinstance(outcome, str):
                    log.warning("result_line_unreadable", batch_key=self.spooled.key, error=outcome, line=line[:200])
                    continue
                yield outcome

    def context_files(self) -> list[Path]:
        """The items' contexts, split into the same parts as the outcomes (one pass over the spool file)."""
        if self.parts == 1:
            return [self.spooled.items_path]
        folder = Path(self.spooled.folder, "contexts")
        folder.mkdir(exist_ok=True)
        paths = [folder / f"part-{part}.jsonl" for part in range(self.parts)]
        files = [path.open("wb", buffering=WRITE_BUFFER // self.parts) for path in paths]
        try:
            with self.spooled.items_path.open("rb") as lines:
                for raw in lines:
                    files[context_part(raw, self.parts)].write(raw)
        finally:
            for handle in files:
                handle.close()
        return paths


async def download_outcomes(lines: AsyncIterator[list[bytes]], result_format: ResultFormat,
                            spooled: SpooledBatch) -> Downloaded:
    """Write every result line to the batch's folder as the provider wrote it, by part; the folder is there
    only once the download is whole."""
    batch_folder, parts = Path(spooled.folder), parts_for(spooled.count)
    final, partial = batch_folder / "outcomes", batch_folder / "outcomes.partial"
    shutil.rmtree(partial, ignore_errors=True)  # a download broken off before
    partial.mkdir()
    files = [(partial / f"part-{part}.jsonl").open("wb", buffering=WRITE_BUFFER // parts) for part in range(parts)]
    try:
        async for run in lines:
            for line in run:
                files[result_part(line, parts, result_format) if parts > 1 else 0].write(line + b"\n")
    finally:
        for handle in files:
            handle.close()
    shutil.rmtree(final, ignore_errors=True)  # a download whose settle was cut short
    partial.replace(final)
    return Downloaded(spooled, final, parts, result_format)
