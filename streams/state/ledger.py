"""The ledger of succeeded custom_ids: a compacted topic every worker reads whole.

Producers' clients partition keys differently (aiokafka hashes with murmur2,
librdkafka with crc32 by default), so the same custom_id published twice may
arrive on two partitions. The ledger is therefore global, like a Faust
GlobalTable: each worker reads all of it at start and then follows it, and so
knows every success, whichever worker recorded it.

One record names many successes: key ``{batch_key}#{chunk}``, value
``{"v": 2, "batch_id": ..., "succeeded": [custom_id, ...], "reprocessed": [[custom_id, name], ...]}``,
published together with the chunk's result events. It also names the attempts that ended otherwise
(``"ended": [[input, partition, offset, timestamp_ms], ...]``, the records they were read from:
``core.outcomes.Placing``; and for retries ``"attempts": [[custom_id, name or "", attempt], ...]``),
published with their failure or retry events: a worker of the same consumer group that reads such a
record again (after a restart or a takeover), or a twin of a retry, skips it rather than calling the
provider for it a second time. A record
published anew (``tierline replay``) is another record, and a new consumer group (an operator
re-consuming the topic) another reader: both run what failed again. Records written before ``v`` 2
named a re-run's success ``custom_id~name``, which an ordinary custom_id holding ``~``
could equal: such an entry is read both ways, so that nothing it may mean runs twice.

A record per custom_id cost every worker a Kafka record to write and another to read
back for each result, a fifth of the batch tier's time; settling the same chunk again
writes the same key, so compaction keeps one copy.

Every success ever is known, with the batch it succeeded in (the first to record it: a batch settled
again emits its results again, identical; another batch holding the same item does not), and every
ending. Not all in memory: about 100 bytes each would grow a long-lived worker without bound. Past
``in_memory`` entries, the worker moves the oldest to a file of its own (``streams.state.disk_keys``)
a slice at a time, so that no step stalls for long; a look-up that memory cannot answer asks the file.
The newest stay in memory: what is asked again soonest is a retry, a redelivery after a rebalance, a
duplicate sent twice.

A worker's file is *kept* (``keep``): every entry goes to it, a slice at a time, and every
``MARK_EVERY_S`` (and when the worker stops) the file notes, per partition, the offset after the last
record whose entries are all in it, with a fingerprint of that record. A restart reads the topic from
those marks on, not from its start: what was written since, about ``MARK_EVERY_S`` of it read again
after a crash. A file that does not match the topic (a mark before the log's start or past its end, or
whose record is not the one marked there: a topic deleted and made again, another cluster, compaction)
is dropped and the topic read whole.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Hashable, Iterable, Iterator

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from core.outcomes import Ending
from schemas import RunKey
from streams.kafka.connection import KafkaConnection
from streams.kafka.publish import Message
from streams.kafka.whole_topic import WholeTopic, record_at

if TYPE_CHECKING:
    from streams.settings import Settings
    from streams.state.disk_keys import DiskKeys, Mark

__all__ = ["Ledger", "ending_bytes", "fingerprint"]

log = structlog.get_logger(__name__)

SPILL_SLICE = 10_000  # entries moved to disk at a time, with what passed the bound: under 100 ms
MARK_EVERY_S = 30.0  # how often a kept file notes how far it goes


class Ledger(WholeTopic):
    """Which custom_ids (within their re-run, if any) have succeeded, and in which batch; which attempts ended.

    With ``spill_to``, at most about ``in_memory`` entries are held in memory; the others are in a file
    of that folder, kept for the next start with ``keep``. Without it, all are in memory (the short-lived
    commands).
    """

    def __init__(self, kafka: KafkaConnection, topic: str, spill_to: Path | None = None,
                 in_memory: int = 0, keep: bool = False) -> None:
        super().__init__(kafka, topic)
        #: Each success (a ``RunKey``) → the batch id it succeeded in ("" outside a provider batch), and each
        #: ended attempt (a ``Placing`` or an ``AttemptKey``: tuples of four, never equal to a run key) → "". In
        #: the order first noted: the oldest go to disk first.
        self._done: dict[Hashable, str] = {}
        self._any_ended = False  # the place of every item read is looked up only once some attempt has ended
        self._spill_to = spill_to if in_memory > 0 else None
        self._in_memory = in_memory
        self._on_disk: DiskKeys | None = None
        self._keep = keep and self._spill_to is not None
        self._unsaved: list[tuple[Hashable, str]] = []  # with ``keep``: noted, not yet in the file
        self._last: dict[int, ConsumerRecord] = {}  # per partition, the last record taken
        self._marked_at = float("-inf")
        self.resumed = False  # the last start read on from the kept file's marks

    @classmethod
    def of(cls, settings: Settings, folder: Path | None = None, keep: bool = False) -> Ledger:
        """The deployment's ledger, past ``TIERLINE_LEDGER_IN_MEMORY`` entries in a file of ``folder`` (the
        worker's data folder, kept for its next start with ``keep``; by default the system's temporary folder,
        for the commands)."""
        return cls(settings.kafka, settings.topics.ledger, folder or Path(tempfile.gettempdir()),
                   settings.ledger_in_memory, keep)

    @property
    def kept_path(self) -> Path | None:
        return None if not self._keep or self._spill_to is None else self._spill_to / f"ledger-{self.topic}.sqlite"

    def succeeded(self, run_key: RunKey) -> bool:
        return run_key in self._done or (self._on_disk is not None and run_key in self._on_disk)

    def succeeded_in(self, run_key: RunKey) -> str | None:
        """The batch id ``run_key`` first succeeded in ("" outside a provider batch), or None."""
        if (batch_id := self._done.get(run_key)) is not None:
            return batch_id
        return None if self._on_disk is None else self._on_disk.get(run_key)

    def has_ended(self, ending: Ending) -> bool:
        """Whether the attempt read from a ``Placing``, or named by an ``AttemptKey``, ended other than in success
        (retried, failed, diverted)."""
        return ending in self._done or (self._on_disk is not None and ending in self._on_disk)

    @property
    def any_ended(self) -> bool:
        return self._any_ended

    @property
    def entries(self) -> tuple[int, int]:
        """Entries known in memory and on disk (the two may share a few)."""
        return len(self._done), 0 if self._on_disk is None else self._on_disk.count

    def _note(self, keys: Iterable[Hashable], batch_id: str) -> None:
        done, on_disk, unsaved = self._done, self._on_disk, self._unsaved
        for key in keys:  # the first batch stands
            if key not in done and (on_disk is None or key not in on_disk):
                done[key] = batch_id
                if self._keep:
                    unsaved.append((key, batch_id))
        if len(unsaved) >= SPILL_SLICE:
            self._save()
        if self._spill_to is not None and len(done) > self._in_memory:
            oldest = list(islice(done.items(), min(len(done) - self._in_memory + SPILL_SLICE, len(done))))
            if self._keep:
                self._save()  # every entry is in the file already, or now
            else:
                self._disk().add(oldest)
            for key, _ in oldest:
                del done[key]

    def _disk(self) -> DiskKeys:
        if self._on_disk is None:
            from streams.state.disk_keys import DiskKeys  # sqlite3 takes 1.7 MB: only for a worker that needs it

            assert self._spill_to is not None
            path = self.kept_path
            self._on_disk = DiskKeys.kept(path) if path is not None else DiskKeys.scratch(self._spill_to)
        return self._on_disk

    def _save(self) -> None:
        """The entries noted since the last save go to the kept file (all, or none if the disk refuses them)."""
        if self._unsaved:
            self._disk().add(self._unsaved)
            self._unsaved = []

    def mark(self) -> None:
        """The kept file notes how far its entries go: everything taken so far is in it."""
        if not self._keep:
            return
        self._save()
        marks = {partition: (record.offset + 1, fingerprint(record)) for partition, record in self._last.items()}
        self._disk().mark(marks, {"any_ended": self._any_ended})
        self._marked_at = time.monotonic()

    def record(self, key: str, chunk: int, batch_id: str, run_keys: list[RunKey],
               ended: list[Ending] | None = None) -> Message:
        """Note successes (and other endings) and return the ledger message (keyed ``{key}#{chunk}``) to publish
        with their events."""
        self._note(run_keys, batch_id)
        doc: dict[str, object] = {"v": 2, "batch_id": batch_id,
                                  "succeeded": [k for k in run_keys if isinstance(k, str)],
                                  "reprocessed": [k for k in run_keys if not isinstance(k, str)]}
        if ended:
            self._note(ended, "")
            self._any_ended = True
            doc["ended"] = [e for e in ended if e[0] != "#attempt"]
            if attempts := [e[1:] for e in ended if e[0] == "#attempt"]:
                doc["attempts"] = attempts
        return Message(self.topic, f"{key}#{chunk}", orjson.dumps(doc))

    def endings(self, key: str, batch_id: str, ended: list[Ending], max_bytes: int) -> Iterator[Message]:
        """Note ``ended`` as ended, in ledger messages of about ``max_bytes`` at most (keyed ``{key}#{chunk}``)."""
        chunk, start, size = 0, 0, 0
        for at, ending in enumerate(ended):
            size += ending_bytes(ending)
            if size > max_bytes and at > start:
                yield self.record(key, chunk, batch_id, [], ended[start:at])
                chunk, start, size = chunk + 1, at, ending_bytes(ending)
        if start < len(ended):
            yield self.record(key, chunk, batch_id, [], ended[start:])

    def take(self, record: ConsumerRecord) -> None:
        try:
            doc = orjson.loads(record.value)
            batch_id = doc.get("batch_id")
            batch_id = batch_id if isinstance(batch_id, str) else ""
            if doc.get("v") == 2:
                self._note([*doc["succeeded"], *((cid, name) for cid, name in doc["reprocessed"])], batch_id)
                if ended := doc.get("ended"):
                    self._note([(str(i), int(p), int(o), int(t)) for i, p, o, t in ended], "")
                    self._any_ended = True
                if attempts := doc.get("attempts"):
                    self._note([("#attempt", str(c), str(r), int(n)) for c, r, n in attempts], "")
                    self._any_ended = True
            else:
                self._note(_both_ways(doc["succeeded"]), batch_id)
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError):
            log.warning("ledger_record_unreadable", partition=record.partition, offset=record.offset)
        self._last[record.partition] = record

    async def start(self) -> int:
        if self._keep:
            self._any_ended = self._disk().flag("any_ended")
        read = await super().start()
        self.mark()
        in_memory, on_disk = self.entries
        log.info("ledger_loaded", records=read, in_memory=in_memory, on_disk=on_disk, resumed=self.resumed)
        return read

    async def starts_at(self, consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int],
                        ends: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """From the kept file's marks, if they match the topic; else from the start, the file begun afresh."""
        marks = self._disk().marks() if self._keep else {}
        self.resumed = False
        if not marks:
            return starts
        why = await _mismatch(consumer, marks, starts, ends)
        if why is not None:
            log.warning("ledger_store_dropped", reason=why, doing="the ledger is read whole, into a new file")
            self._drop_kept()
            return starts
        self.resumed = True
        return {tp: marks[tp.partition][0] if tp.partition in marks else start for tp, start in starts.items()}

    def _drop_kept(self) -> None:
        path = self.kept_path
        assert path is not None
        self._disk().close()
        self._on_disk, self._any_ended = None, False
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    async def catch_up(self, timeout_s: float = 0.0) -> int:
        read = await super().catch_up(timeout_s)
        if self._keep and self.loaded and time.monotonic() - self._marked_at >= MARK_EVERY_S:
            self._mark_or_say()
        return read

    def _mark_or_say(self) -> None:
        try:
            self.mark()
        except Exception as exc:  # noqa: BLE001 - a full disk, say: the entries stay in memory, marked next time
            self._marked_at = time.monotonic()
            log.warning("ledger_mark_failed", error=f"{type(exc).__name__}: {exc}",
                        doing="tried again later; a restart meanwhile reads on from the last mark")

    async def stop(self) -> None:
        if self._keep and self.loaded:
            self._mark_or_say()
        if self._on_disk is not None:
            self._on_disk.close()
            self._on_disk = None
        await super().stop()


def fingerprint(record: ConsumerRecord) -> str:
    """A ledger record's, to tell it from another at the same offset (a topic made again)."""
    return hashlib.sha256((record.key or b"") + b"\0" + (record.value or b"")).hexdigest()[:32]


async def _mismatch(consumer: AIOKafkaConsumer, marks: dict[int, Mark], starts: dict[TopicPartition, int],
                    ends: dict[TopicPartition, int]) -> str | None:
    """Why the kept file's marks do not match the topic as it is, if they do not."""
    by_partition = {tp.partition: tp for tp in starts}
    if gone := sorted(set(marks) - set(by_partition)):
        return f"partitions {gone} are marked but the topic has no such partition"
    for partition, (offset, marked) in sorted(marks.items()):
        tp = by_partition[partition]
        if not starts[tp] <= offset <= ends[tp]:
            return f"partition {partition} is marked at {offset}, outside its records ({starts[tp]} to {ends[tp]})"
        if offset > starts[tp]:
            record = await record_at(consumer, tp, offset - 1)  # the next one, if that was compacted away
            found = fingerprint(record) if record is not None and record.offset == offset - 1 else None
            if found != marked:
                return f"the record before partition {partition}'s mark is not the one marked ({found or 'none'})"
    return None


def ending_bytes(ending: Ending) -> int:
    """At most what ``ending`` takes in a ledger record: ``["retry@APP_ID",P,O,T],`` or ``["ID","NAME",N],``
    (a custom_id's escapes aside, which a record's half of its room covers)."""
    return sum(len(part) if isinstance(part, str) else 20 for part in ending) + 10


def _both_ways(entries: list[str]) -> list[RunKey]:
    """An old entry ``a~b`` was the custom_id ``a~b`` or ``a`` re-run as ``b``: it stands for each."""
    keys: list[RunKey] = []
    for entry in entries:
        keys.append(entry)
        at = entry.find("~")
        while at > 0:
            keys.append((entry[:at], entry[at + 1:]))
            at = entry.find("~", at + 1)
    return keys
