"""A set of run keys kept on disk: the ledger's older successes, in bounded memory.

The file is the worker's own scratch copy, rebuilt from the ledger topic at every start: it is
unlinked as soon as it is open (the open handle keeps it, and the system frees it when the process
ends, however it ends), its journal in memory, and never read by anything else. A key is
stored as its JSON text, so that a custom_id and a re-run's ``(custom_id, name)`` can never be
taken for one another. A look-up in the file costs about 3.5 µs, an added key about 4 µs.

Most look-ups are of keys that are not there (each new request asks), so a bit per hash value in
memory (4 MiB) answers most of those without the file: a clear bit means absent for certain; a set
bit is asked of the file. With 1.5 million keys on disk 5% of absent keys reach the file, with 10
million 26%.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Collection

import orjson

from schemas import RunKey

__all__ = ["DiskKeys"]

FILTER_BITS = 1 << 25


class DiskKeys:
    """Membership of run keys, in a file of ``folder``."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ledger-{uuid.uuid4().hex}.sqlite"
        self._db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=MEMORY", "synchronous=OFF", "locking_mode=EXCLUSIVE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE keys (key TEXT PRIMARY KEY) WITHOUT ROWID")
        path.unlink()
        self._filter = bytearray(FILTER_BITS // 8)  # bit hash(key) % FILTER_BITS: set for every key added
        self.count = 0  # keys stored

    def add(self, keys: Collection[RunKey]) -> None:
        """Store ``keys``; if that fails (a full disk), none of them is taken as stored."""
        before, bits = self._db.total_changes, self._filter
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR IGNORE INTO keys VALUES (?)", ((_text(key),) for key in keys))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.count += self._db.total_changes - before
        for key in keys:
            bit = hash(key) % FILTER_BITS
            bits[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, key: RunKey) -> bool:
        bit = hash(key) % FILTER_BITS
        if not self._filter[bit >> 3] & (1 << (bit & 7)):
            return False
        return self._db.execute("SELECT 1 FROM keys WHERE key = ?", (_text(key),)).fetchone() is not None


def _text(key: RunKey) -> str:
    return orjson.dumps(key).decode()
