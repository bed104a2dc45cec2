"""Keys kept on disk, each with a short text: the ledger's older entries, in bounded memory.

A key is stored as its JSON text, so that a custom_id, a re-run's ``(custom_id, name)`` and an
attempt's place can never be taken for one another; its text is the batch id it succeeded in. A
look-up in the file costs about 3.5 µs, an added key about 4 µs.

Most look-ups are of keys that are not there (each new request asks), so a bit per hash value in
memory (4 MiB) answers most of those without the file: a clear bit means absent for certain; a set
bit is asked of the file. With 1.5 million keys on disk 5% of absent keys reach the file, with 10
million 26%. The hash is murmur2 (of a custom_id's bytes, of any other key's text), the same in every
process, so that a kept file's bits can be kept with it.

Two kinds of file:

- **Scratch** (``DiskKeys.scratch``): the process's own, rebuilt from the ledger topic at every start.
  It is unlinked as soon as it is open (the open handle keeps it, and the system frees it when the
  process ends, however it ends), its journal in memory, and never read by anything else.
- **Kept** (``DiskKeys.kept``): the worker's store in its data folder, read again at its next start.
  Beside the keys it holds a *mark* per partition of the topic they came from (the offset after the
  last record whose keys are all stored, and a fingerprint of that record) and the bits, written
  together (``mark``), so that the keys and the marks are always of the same moment. A file that
  cannot be read as such (cut short, of another format) is started afresh; one another process holds
  is left to it, and a scratch file used instead.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Collection, Hashable

import orjson
import structlog
from murmurhash2 import murmurhash2

__all__ = ["DiskKeys", "Mark"]

log = structlog.get_logger(__name__)

FILTER_BITS = 1 << 25
FORMAT = 2  # of a kept file (and of its bits): another is started afresh
SEED = 0x5EED

Mark = tuple[int, str]  # the offset after the last record taken from a partition, and that record's fingerprint


class DiskKeys:
    """Keys and their texts, in a file. A key is a string or a tuple of strings and integers."""

    def __init__(self, db: sqlite3.Connection, filter_bits: bytearray, count: int) -> None:
        self._db = db
        self._filter = filter_bits  # bit murmur2(key) % FILTER_BITS: set for every key added
        self.count = count  # keys stored

    @classmethod
    def scratch(cls, folder: Path) -> DiskKeys:
        """A file of this process only, in ``folder``, gone when the process ends."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ledger-{uuid.uuid4().hex}.sqlite"
        db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=MEMORY", "synchronous=OFF", "locking_mode=EXCLUSIVE"):
            db.execute(f"PRAGMA {pragma}")
        _tables(db)
        path.unlink()
        return cls(db, bytearray(FILTER_BITS // 8), 0)

    @classmethod
    def kept(cls, path: Path) -> DiskKeys:
        """The file at ``path`` as a previous process left it, or a new one there if there is none it can use."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return cls._open(path)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            log.warning("ledger_store_in_use", path=str(path), error=str(exc),
                        doing="another process holds it (two workers on one data folder?): this one keeps a "
                              "scratch file and reads the ledger whole")
            return cls.scratch(path.parent)
        except sqlite3.Error as exc:
            log.warning("ledger_store_unusable", path=str(path), error=str(exc), doing="started afresh")
        path.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return cls._open(path)

    @classmethod
    def _open(cls, path: Path) -> DiskKeys:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            for pragma in ("locking_mode=EXCLUSIVE", "journal_mode=WAL", "synchronous=NORMAL"):
                db.execute(f"PRAGMA {pragma}")
            _tables(db)
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            if not meta:
                db.execute("INSERT INTO meta VALUES ('format', ?), ('count', 0)", (FORMAT,))
                return cls(db, bytearray(FILTER_BITS // 8), 0)
            bits = meta.get("filter")
            if meta.get("format") != FORMAT or bits is None or len(bits) != FILTER_BITS // 8:
                raise sqlite3.DatabaseError(f"not a ledger store of format {FORMAT}")
            return cls(db, bytearray(bits), int(meta["count"]))
        except BaseException:
            db.close()
            raise

    def add(self, entries: Collection[tuple[Hashable, str]]) -> None:
        """Store each ``(key, text)`` (a key stored before keeps its text); if that fails (a full disk), none of
        them is taken as stored."""
        before, bits = self._db.total_changes, self._filter
        texts = [(_json(key), text) for key, text in entries]
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR IGNORE INTO keys VALUES (?, ?)", texts)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.count += self._db.total_changes - before
        for (key, _), (text, _) in zip(entries, texts, strict=True):
            bit = _bit(key, text)
            bits[bit >> 3] |= 1 << (bit & 7)

    def get(self, key: Hashable) -> str | None:
        """``key``'s text, or None if it is not stored."""
        bit = _bit(key)
        if not self._filter[bit >> 3] & (1 << (bit & 7)):
            return None
        row = self._db.execute("SELECT text FROM keys WHERE key = ?", (_json(key),)).fetchone()
        return None if row is None else str(row[0])

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key) is not None

    # -- a kept file's marks ---------------------------------------------------------

    def marks(self) -> dict[int, Mark]:
        """Per partition, how far the keys stored go (as last ``mark``ed)."""
        return {int(p): (int(n), str(f)) for p, n, f in self._db.execute("SELECT * FROM marks").fetchall()}

    def flag(self, name: str) -> bool:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return bool(row and row[0])

    def mark(self, marks: dict[int, Mark], flags: dict[str, bool]) -> None:
        """Note how far the keys stored go, with the bits and ``flags``, as one write: every key of the records
        before each mark must be stored by then."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO marks VALUES (?, ?, ?)",
                                 ((p, n, f) for p, (n, f) in marks.items()))
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 [("filter", bytes(self._filter)), ("count", self.count), *flags.items()])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()


def _tables(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, text TEXT NOT NULL) WITHOUT ROWID")
    db.execute("CREATE TABLE IF NOT EXISTS marks (partition INTEGER PRIMARY KEY, next INTEGER NOT NULL, "
               "fingerprint TEXT NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value)")


def _bit(key: Hashable, text: str | None = None) -> int:
    """The key's bit: a custom_id's own bytes hashed, a tuple's JSON text (``text``, if it is at hand; most look-ups
    are of custom_ids never seen, which the filter answers without encoding them)."""
    return murmurhash2(key.encode() if isinstance(key, str) else (text or _json(key)).encode(), SEED) % FILTER_BITS


def _json(key: Hashable) -> str:
    return orjson.dumps(key).decode()
