"""The ledger's keys: a re-run's success can never pass for another custom_id's, and old records still count."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from schemas import RunKey, run_key
from streams.kafka.connection import KafkaConnection
from streams.state.disk_keys import DiskKeys
from streams.state.ledger import Ledger


def record(value: dict) -> SimpleNamespace:
    return SimpleNamespace(value=orjson.dumps(value), partition=0, offset=0)


def test_a_custom_id_holding_a_tilde_is_not_another_items_rerun() -> None:
    ledger = Ledger(KafkaConnection("unused:9092"), "ledger")
    ledger.record("batch", 0, "b1", [run_key("t-a~r1", None)])
    assert ledger.succeeded(run_key("t-a~r1", None))
    assert not ledger.succeeded(run_key("t-a", "r1"))


def test_a_rerun_is_known_by_its_custom_id_and_name_after_a_restart() -> None:
    written = Ledger(KafkaConnection("unused:9092"), "ledger")
    value = written.record("batch", 0, "b1", [run_key("t-a", "r1"), "plain"]).value
    read = Ledger(KafkaConnection("unused:9092"), "ledger")
    read.take(SimpleNamespace(value=value, partition=0, offset=0))
    assert read.succeeded(run_key("t-a", "r1")) and read.succeeded("plain")
    assert not read.succeeded("t-a~r1") and not read.succeeded("t-a")


def test_an_entry_of_the_old_format_counts_for_everything_it_may_have_meant() -> None:
    ledger = Ledger(KafkaConnection("unused:9092"), "ledger")
    ledger.take(record({"batch_id": "b0", "succeeded": ["t-a~r1", "x~y~z", "plain"]}))
    assert ledger.succeeded("t-a~r1") and ledger.succeeded(run_key("t-a", "r1"))
    assert ledger.succeeded(run_key("x", "y~z")) and ledger.succeeded(run_key("x~y", "z"))
    assert ledger.succeeded("plain") and not ledger.succeeded(run_key("t-a", "r2"))


def test_an_unreadable_record_is_skipped() -> None:
    ledger = Ledger(KafkaConnection("unused:9092"), "ledger")
    for value in (b"not json", orjson.dumps({"v": 2, "succeeded": 5}), orjson.dumps([1])):
        ledger.take(SimpleNamespace(value=value, partition=0, offset=0))
    assert not ledger.succeeded("5")


def test_past_its_bound_the_ledger_keeps_older_successes_on_disk_and_knows_every_one(tmp_path: Path) -> None:
    ledger = Ledger(KafkaConnection("unused:9092"), "ledger", tmp_path, in_memory=100)
    keys: list[RunKey] = []
    for chunk in range(40):
        keys.extend(run_key(f"item-{chunk}-{n}", "again" if n % 7 == 0 else None) for n in range(50))
        ledger.record("batch", chunk, "b1", keys[-50:])
        assert ledger.entries[0] <= 100  # past it, memory's entries go to disk
    assert sum(ledger.entries) >= len(keys)
    assert all(ledger.succeeded(key) for key in keys)
    # On disk as in memory, a re-run's success is not the custom_id's, nor another's spelling of it.
    assert not ledger.succeeded("item-0-0") and not ledger.succeeded("item-0-0~again")
    assert not ledger.succeeded(run_key("item-0-1", "again")) and not ledger.succeeded("never")
    assert list(tmp_path.iterdir()) == []  # the worker's own scratch file: unlinked, gone when it ends


def test_successes_read_at_start_past_the_bound_are_all_known(tmp_path: Path) -> None:
    written = Ledger(KafkaConnection("unused:9092"), "ledger")
    values = [written.record("batch", chunk, "b1", [f"read-{chunk}-{n}" for n in range(30)])[2] for chunk in range(20)]
    read = Ledger(KafkaConnection("unused:9092"), "ledger", tmp_path, in_memory=50)
    for value in values:
        read.take(SimpleNamespace(value=value, partition=0, offset=0))
    assert read.entries[0] <= 50
    assert all(read.succeeded(f"read-{chunk}-{n}") for chunk in range(20) for n in range(30))
    assert not read.succeeded("read-20-0")


def test_a_spill_that_fails_loses_no_success(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(KafkaConnection("unused:9092"), "ledger", tmp_path, in_memory=10)
    ledger.record("batch", 0, "b1", [f"kept-{n}" for n in range(8)])
    full = sqlite3.OperationalError("database or disk is full")
    with monkeypatch.context() as patched:
        patched.setattr("streams.state.disk_keys.DiskKeys.add", lambda self, entries: (_ for _ in ()).throw(full))
        with pytest.raises(sqlite3.OperationalError):
            ledger.record("batch", 1, "b1", [f"kept-{n}" for n in range(8, 16)])
    assert all(ledger.succeeded(f"kept-{n}") for n in range(16))  # still in memory
    ledger.record("batch", 2, "b1", ["kept-16"])  # the disk has room again: the spill goes through
    assert ledger.entries == (0, 17) and all(ledger.succeeded(f"kept-{n}") for n in range(17))


def test_keys_on_disk_are_stored_all_or_none(tmp_path: Path) -> None:
    disk = DiskKeys.scratch(tmp_path)
    with pytest.raises(TypeError):  # the second cannot be written: the first is not kept either
        disk.add([("first", "b1"), (("second", object()), "b1")])
    assert "first" not in disk and disk.count == 0
    disk.add([("third", "b2"), (("fourth", "again"), "b3")])  # the failed write left nothing open
    assert "third" in disk and ("fourth", "again") in disk and "fourth" not in disk and disk.count == 2
    assert disk.get("third") == "b2" and disk.get(("fourth", "again")) == "b3" and disk.get("fourth") is None


def test_each_success_is_known_with_the_batch_it_first_succeeded_in_in_memory_or_on_disk(tmp_path: Path) -> None:
    ledger = Ledger(KafkaConnection("unused:9092"), "ledger", tmp_path, in_memory=10)
    ledger.record("first", 0, "b1", [f"item-{n}" for n in range(30)])
    ledger.record("second", 0, "b2", ["item-0", "item-29", "new"])  # a second batch holding some: the first stands
    assert ledger.entries[1] > 0
    assert [ledger.succeeded_in(key) for key in ("item-0", "item-29", "new", "never")] == ["b1", "b1", "b2", None]
    read = Ledger(KafkaConnection("unused:9092"), "ledger", tmp_path, in_memory=10)
    read.take(record({"v": 2, "batch_id": "b1", "succeeded": ["x"], "reprocessed": [["y", "r1"]]}))
    read.take(record({"succeeded": ["old~r"], "batch_id": "b0"}))  # before v 2
    assert (read.succeeded_in("x"), read.succeeded_in(("y", "r1")), read.succeeded_in(("old", "r"))) == (
        "b1", "b1", "b0")


def test_ended_attempts_are_known_in_bounded_memory_also_after_a_restart(tmp_path: Path) -> None:
    ledger = Ledger(KafkaConnection("unused:9092"), "ledger", tmp_path, in_memory=10)
    assert not ledger.any_ended
    placings = [("retry@app", 1, offset, 1_700_000_000_000 + offset) for offset in range(40)]
    messages = [ledger.record("tl-b~retried", chunk, "b1", [], placings[chunk * 10:chunk * 10 + 10])
                for chunk in range(4)]
    assert ledger.any_ended and ledger.entries[0] <= 10 + 10_000  # past the bound, the oldest went to disk
    assert ledger.entries[1] > 0 and all(ledger.has_ended(placing) for placing in placings)
    assert not ledger.has_ended(("retry@app", 1, 0, 0))  # a record written again at that offset: another one
    assert not ledger.has_ended(("requests@app", 1, 0, 1_700_000_000_000)) and not ledger.succeeded("retry@app")
    read = Ledger(KafkaConnection("unused:9092"), "ledger", tmp_path, in_memory=10)
    for message in messages:
        read.take(SimpleNamespace(value=message.value, partition=0, offset=0))
    assert read.any_ended and all(read.has_ended(placing) for placing in placings)


def test_a_retried_attempt_is_known_ended_by_its_run_and_number_after_a_restart(tmp_path: Path) -> None:
    from core.outcomes import ItemContext, attempt_key

    ledger = Ledger(KafkaConnection("unused:9092"), "ledger")
    retried = ItemContext("c-1", 2, 0, {}, "fix", placed_by=("retry@app", 0, 4, 1_700_000_000_000))
    first = ItemContext("c-2", 1, 0, {}, placed_by=("requests@app", 0, 9, 1_700_000_000_000))
    message = ledger.record("tl-b~retried", 0, "b1", [], [*retried.endings(), *first.endings()])
    assert orjson.loads(message.value)["attempts"] == [["c-1", "fix", 2]]  # a request's first attempt: its record
    read = Ledger(KafkaConnection("unused:9092"), "ledger", tmp_path, in_memory=10)
    read.take(SimpleNamespace(value=message.value, partition=0, offset=0))
    assert read.has_ended(attempt_key("c-1", "fix", 2)) and read.has_ended(("requests@app", 0, 9, 1_700_000_000_000))
    assert not read.has_ended(attempt_key("c-1", "fix", 3)) and not read.has_ended(attempt_key("c-1", None, 2))
    assert not read.has_ended(attempt_key("c-2", None, 1))


# -- the worker's kept file ------------------------------------------------------------------

def test_a_kept_file_holds_its_keys_marks_and_bits_for_the_next_process(tmp_path: Path) -> None:
    kept = DiskKeys.kept(tmp_path / "ledger.sqlite")
    kept.add([("a", "b1"), (("b", "r1"), "b2"), (("retry@app", 0, 7, 1), "")])
    kept.mark({0: (8, "f0"), 3: (2, "f3")}, {"any_ended": True})
    kept.close()
    again = DiskKeys.kept(tmp_path / "ledger.sqlite")
    assert again.get("a") == "b1" and again.get(("b", "r1")) == "b2" and ("retry@app", 0, 7, 1) in again
    assert "b" not in again and again.get("never") is None and again.count == 3
    assert again.marks() == {0: (8, "f0"), 3: (2, "f3")} and again.flag("any_ended")


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_a_kept_file_that_cannot_be_read_is_started_afresh(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "ledger.sqlite").write_bytes(content)
    kept = DiskKeys.kept(tmp_path / "ledger.sqlite")
    assert kept.marks() == {} and kept.count == 0
    kept.add([("a", "b1")])
    assert "a" in kept


def test_a_kept_file_another_process_holds_is_left_to_it(tmp_path: Path) -> None:
    holder = DiskKeys.kept(tmp_path / "ledger.sqlite")
    holder.add([("theirs", "b1")])
    holder.mark({0: (1, "f")}, {})
    other = DiskKeys.kept(tmp_path / "ledger.sqlite")  # a scratch file of its own instead
    assert "theirs" not in other and other.marks() == {}
    assert holder.get("theirs") == "b1" and holder.marks() == {0: (1, "f")}


def test_with_a_kept_file_every_entry_reaches_it_and_a_mark_says_how_far(tmp_path: Path) -> None:
    writer = Ledger(KafkaConnection("unused:9092"), "ledger")
    ledger = Ledger(KafkaConnection("unused:9092"), "ledger", tmp_path, in_memory=50, keep=True)
    for offset in range(3):
        value = writer.record("batch", offset, "b1", [f"kept-{offset}-{n}" for n in range(30)])[2]
        ledger.take(SimpleNamespace(key=f"batch#{offset}".encode(), value=value, partition=1, offset=offset))
    ledger.mark()
    assert ledger.entries[1] == 90  # all in the file, the newest in memory too
    path = ledger.kept_path
    assert path is not None and path.parent == tmp_path
    ledger._disk().close()
    kept = DiskKeys.kept(path)
    assert all(f"kept-{o}-{n}" in kept for o in range(3) for n in range(30))
    assert list(kept.marks()) == [1] and kept.marks()[1][0] == 3
