"""Keys kept on disk, each with a short text: the ledger's older entries, in bounded memory.

The file is the worker's own scratch copy, rebuilt from the ledger topic at every start: it is
unlinked as soon as it is open (the open handle keeps it, and the system frees it when the process
ends, however it ends), its journal in memory, and never read by anything else. A key is
stored as its JSON text, so that a custom_id, a re-run's ``(custom_id, name)`` and an attempt's
place can never be taken for one another; its text is the batch id it succeeded in. A look-up in the
file costs about 3.5 µs, an added key about 4 µs.

Most look-ups are of keys that are not there (each new request asks), so a bit per hash value in
memory (4 MiB) answers most of those without the file: a clear bit means absent for certain; a set
bit is asked of the file. With 1.5 million keys on disk 5% of absent keys reach the file, with 10
million 26%.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Collection, Hashable

import orjson

__all__ = ["DiskKeys"]

FILTER_BITS = 1 << 25


class DiskKeys:
    """Keys and their texts, in a file of ``folder``. A key is a string or a tuple of strings and integers."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ledger-{uuid.uuid4().hex}.sqlite"
        self._db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=MEMORY", "synchronous=OFF", "locking_mode=EXCLUSIVE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE keys (key TEXT PRIMARY KEY, text TEXT NOT NULL) WITHOUT ROWID")
        path.unlink()
        self._filter = bytearray(FILTER_BITS // 8)  # bit hash(key) % FILTER_BITS: set for every key added
        self.count = 0  # keys stored

    def add(self, entries: Collection[tuple[Hashable, str]]) -> None:
        """Store each ``(key, text)`` (a key stored before keeps its text); if that fails (a full disk), none of
        them is taken as stored."""
        before, bits = self._db.total_changes, self._filter
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR IGNORE INTO keys VALUES (?, ?)",
                                 ((_json(key), text) for key, text in entries))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.count += self._db.total_changes - before
        for key, _ in entries:
            bit = hash(key) % FILTER_BITS
            bits[bit >> 3] |= 1 << (bit & 7)

    def get(self, key: Hashable) -> str | None:
        """``key``'s text, or None if it is not stored."""
        bit = hash(key) % FILTER_BITS
        if not self._filter[bit >> 3] & (1 << (bit & 7)):
            return None
        row = self._db.execute("SELECT text FROM keys WHERE key = ?", (_json(key),)).fetchone()
        return None if row is None else str(row[0])

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key) is not None


def _json(key: Hashable) -> str:
    return orjson.dumps(key).decode()
