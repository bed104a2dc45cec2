"""The ledger's keys: a re-run's success can never pass for another custom_id's, and old records still count."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from schemas import run_key
from streams.kafka.connection import KafkaConnection
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
    _topic, _key, value, _partition = written.record("batch", 0, "b1", [run_key("t-a", "r1"), "plain"])
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
