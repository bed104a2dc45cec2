"""What the emitter makes of a batch's outcomes, in-process: which event each item gets, at what price.

A batch is spooled as the window agent spools it; the emitter settles it against the
outcomes a provider adapter would yield, on an injected clock, publishing to a list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from core.cost import Billed
from core.limits import BatchGroup
from core.outcomes import ItemContext, ItemOutcome
from providers.anthropic.wire import RESULTS as ANTHROPIC_RESULTS
from providers.base import SpooledBatch
from schemas import ErrorInfo
from streams import emit as emit_module
from streams.emit import Emitter
from streams.settings import Settings
from streams.state import spool as spool_module
from tests import fakes
from tests.fakes import result_file

SETTINGS = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "e.", "TIERLINE_MAX_ATTEMPTS": "3",
                              "TIERLINE_RETRY_BASE_DELAY_S": "10"})
NOW = 1_800_000_000.0
USAGE = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}


class Batch:
    def __init__(self, folder: Path) -> None:
        self.runtime = fakes.runtime(SETTINGS, folder)
        self.emitter = Emitter(self.runtime, clock=lambda: NOW)

    def spool(self, attempts: dict[str, int], reprocess: str | None = None,
              deadlines: dict[str, float] | None = None) -> SpooledBatch:
        spool = self.runtime.spool
        for custom_id, attempt in attempts.items():
            params = {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            context = ItemContext(custom_id, attempt, 2, {"team": "search"}, reprocess,
                                  deadline=(deadlines or {}).get(custom_id))
            spool.append("tl-b", orjson.dumps({"custom_id": custom_id, "params": params}),
                         orjson.dumps(context.encode()))
        return spool.finish("tl-b", BatchGroup("anthropic"), len(attempts), 100)

    def on(self, topic: str) -> dict[str, Any]:
        return {doc["custom_id"]: doc for doc in self.runtime.publisher.on(topic)}

    def partitions(self) -> set[int | None]:
        return {m.partition for m in self.runtime.publisher.sent if m.topic != SETTINGS.topics.ledger}




def ok(custom_id: str, response: Any = None) -> ItemOutcome:
    answer = {"model": "claude-haiku-4-5", "content": [{"type": "text", "text": "hello"}]} if response is None \
        else response
    return ItemOutcome(custom_id, answer, USAGE, None)


def error(custom_id: str, kind: str, retryable: bool) -> ItemOutcome:
    return ItemOutcome(custom_id, None, None, ErrorInfo(type=kind, message=f"{kind} happened"), retryable)


@pytest.fixture
def batch(tmp_path: Path) -> Batch:
    return Batch(tmp_path)


async def test_each_item_gets_one_event_chosen_by_its_outcome(batch: Batch) -> None:
    spooled = batch.spool({"ok": 1, "busy": 1, "bad": 1, "left-out": 1, "last-try": 3})
    tally = await batch.emitter.settle_batch(spooled, "msgbatch_1", *result_file(
        ok("ok"), error("busy", "overloaded_error", True), error("bad", "invalid_request_error", False),
        error("last-try", "api_error", True)))
    results, failures, retries = (batch.on(SETTINGS.topics.results), batch.on(SETTINGS.topics.failures),
                                  batch.on(SETTINGS.topics.retry))
    assert set(results) == {"ok"}
    assert {cid: (f["error"]["type"], f["final"]) for cid, f in failures.items()} == {
        "busy": ("overloaded_error", False), "bad": ("invalid_request_error", True),
        "left-out": ("missing_result", False), "last-try": ("api_error", True)}
    assert {cid: (r["attempt"], r["not_before"]) for cid, r in retries.items()} == {
        "busy": (2, NOW + 10), "left-out": (2, NOW + 10)}
    assert (tally.succeeded, tally.failed, tally.retried) == (1, 2, 2)
    # Every item has left its batch: the window may take its custom_id again.
    assert sorted(custom_id for custom_id, _ in sum(batch.runtime.settled, [])) == [
        "bad", "busy", "last-try", "left-out", "ok"]


async def test_a_result_is_priced_at_batch_rates_beside_the_realtime_price(batch: Batch) -> None:
    await batch.emitter.settle_batch(batch.spool({"ok": 1}), "msgbatch_1", *result_file(ok("ok")))
    result = batch.on(SETTINGS.topics.results)["ok"]
    prices = batch.runtime.prices
    assert result["cost_usd"] == pytest.approx(prices.batch_usd("anthropic", "claude-haiku-4-5", Billed(10**6, 10**6)))
    assert result["realtime_usd"] == pytest.approx(2 * result["cost_usd"])
    assert (result["metadata"], result["batch_id"], result["attempt"]) == ({"team": "search"}, "msgbatch_1", 1)


async def test_a_success_is_in_the_ledger_published_with_its_result(batch: Batch) -> None:
    await batch.emitter.settle_batch(batch.spool({"ok": 1}, reprocess="fix-1"), "msgbatch_1", *result_file(ok("ok")))
    assert batch.runtime.ledger.succeeded(("ok", "fix-1")) and not batch.runtime.ledger.succeeded("ok")
    [ledger] = [m for m in batch.runtime.publisher.sent if m.topic == SETTINGS.topics.ledger]
    assert orjson.loads(ledger.value)["reprocessed"] == [["ok", "fix-1"]]


async def test_a_result_already_emitted_under_another_batch_is_not_emitted_again(batch: Batch) -> None:
    # "twice" succeeded in another batch first (a resumed zombie's batch held it too): billed again, but its one
    # result stands, and the report, which counts result events, counts it once.
    batch.runtime.ledger.record("tl-other", 0, "msgbatch_0", ["twice"])
    spooled = batch.spool({"twice": 1, "once": 1})
    tally = await batch.emitter.settle_batch(spooled, "msgbatch_1", *result_file(ok("twice"), ok("once")))
    assert set(batch.on(SETTINGS.topics.results)) == {"once"} and not batch.on(SETTINGS.topics.failures)
    assert (tally.succeeded, tally.billed_twice) == (1, 1)
    assert tally.cost_usd == pytest.approx(2 * batch.runtime.prices.batch_usd("anthropic", "claude-haiku-4-5",
                                                                            Billed(10**6, 10**6)))
    [alert] = batch.runtime.publisher.on(SETTINGS.topics.alerts)
    assert alert["kind"] == "billed_twice" and "'twice'" in alert["message"]
    assert batch.runtime.ledger.succeeded_in("twice") == "msgbatch_0"
    assert ("twice", 1) in sum(batch.runtime.settled, [])  # out of the in-flight set all the same


async def test_a_batch_settled_again_emits_its_own_results_again(batch: Batch) -> None:
    # After a crash mid-settle the same batch is settled again: its results go out again, identical (the ledger
    # record of a chunk may have landed where its result events did not).
    spooled = batch.spool({"ok": 1})
    await batch.emitter.settle_batch(spooled, "msgbatch_1", *result_file(ok("ok")))
    first = batch.runtime.publisher.on(SETTINGS.topics.results)
    await batch.emitter.settle_batch(spooled, "msgbatch_1", *result_file(ok("ok")))
    assert batch.runtime.publisher.on(SETTINGS.topics.results) == first * 2


async def test_every_event_stays_on_the_partition_the_item_arrived_on(batch: Batch) -> None:
    spooled = batch.spool({"ok": 1, "busy": 1})
    await batch.emitter.settle_batch(spooled, "b", *result_file(ok("ok"), error("busy", "overloaded_error", True)))
    assert batch.partitions() == {2}


async def test_a_retry_carries_the_original_request(batch: Batch) -> None:
    busy = error("busy", "overloaded_error", True)
    await batch.emitter.settle_batch(batch.spool({"busy": 1}), "b", *result_file(busy))
    retry = batch.on(SETTINGS.topics.retry)["busy"]
    assert retry["params"]["messages"] == [{"role": "user", "content": "hi"}]
    assert retry["previous_error"] == {"type": "overloaded_error", "message": "overloaded_error happened"}


async def test_an_answer_that_is_not_a_json_object_is_a_final_failure_not_a_result(batch: Batch) -> None:
    odd = ok("odd", response=["not", "a", "dict"])
    await batch.emitter.settle_batch(batch.spool({"odd": 1}), "b", *result_file(odd))
    assert batch.on(SETTINGS.topics.results) == {}
    failure = batch.on(SETTINGS.topics.failures)["odd"]
    assert (failure["error"]["type"], failure["final"]) == ("invalid_response", True)


async def test_errors_of_the_final_kinds_are_not_retried(batch: Batch) -> None:
    spooled = batch.spool({"a": 1, "b": 1})
    await batch.emitter.settle_batch(spooled, "b", *result_file(error("a", "batch_cancelled", True)),
                                     final_kinds=frozenset({"batch_cancelled"}),
                                     unrun=ErrorInfo(type="batch_cancelled", message="cancelled with --fail"))
    assert batch.on(SETTINGS.topics.retry) == {}
    assert {f["error"]["type"] for f in batch.on(SETTINGS.topics.failures).values()} == {"batch_cancelled"}


async def test_a_result_for_an_item_not_in_the_batch_or_a_second_one_is_ignored_and_said(batch: Batch) -> None:
    await batch.emitter.settle_batch(batch.spool({"a": 1}), "b", *result_file(ok("stranger"), ok("a"), ok("a")))
    assert set(batch.on(SETTINGS.topics.results)) == {"a"} and len(batch.on(SETTINGS.topics.results)) == 1
    assert len([m for m in batch.runtime.publisher.sent if m.topic == SETTINGS.topics.results]) == 1
    [alert] = batch.runtime.publisher.on(SETTINGS.topics.alerts)
    assert alert["kind"] == "unexpected_results" and "2 result line(s)" in alert["message"]


async def test_a_batch_settled_in_parts_still_gives_each_item_exactly_one_event(
        batch: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "PART_ITEMS", 4)  # 30 items: 8 parts, matched one at a time
    ids = [f"item-{n:02d}" for n in range(30)]
    spooled = batch.spool({custom_id: 1 for custom_id in ids})
    answered = [ok(custom_id) for custom_id in reversed(ids[:25])]  # in another order than sent
    tally = await batch.emitter.settle_batch(spooled, "b", *result_file(
        *answered, ok("stranger"), ok(ids[3]), error(ids[25], "overloaded_error", True)))
    results, failures = batch.on(SETTINGS.topics.results), batch.on(SETTINGS.topics.failures)
    assert set(results) == set(ids[:25]) and tally.succeeded == 25
    assert len([m for m in batch.runtime.publisher.sent if m.topic == SETTINGS.topics.results]) == 25
    assert {cid: f["error"]["type"] for cid, f in failures.items()} == {
        ids[25]: "overloaded_error", **{cid: "missing_result" for cid in ids[26:]}}
    [alert] = batch.runtime.publisher.on(SETTINGS.topics.alerts)
    assert "2 result line(s)" in alert["message"]  # the stranger and the second answer for item-03


@settings(max_examples=300, deadline=None)
@given(custom_id=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40),
       parts=st.integers(2, 9), reprocess=st.none() | st.just("fix-1"))
def test_a_context_line_falls_in_the_part_of_its_custom_id(custom_id: str, parts: int, reprocess: str | None) -> None:
    line = orjson.dumps(ItemContext(custom_id, 1, 0, {"note": '"custom_id":"x"'}, reprocess).encode())
    assert spool_module.context_part(line, parts) == spool_module.part_of(custom_id, parts)
    reordered = orjson.dumps({"attempt": 1, "custom_id": custom_id})  # not as tierline writes it: parsed
    assert spool_module.context_part(reordered, parts) == spool_module.part_of(custom_id, parts)


async def test_ids_with_quotes_escapes_and_other_scripts_settle_in_parts_each_once(
        batch: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "PART_ITEMS", 2)
    ids = ['say "hi"', "back\\slash", "größe", "日本-1", "plain-1", "plain-2", 'q"\\"q']
    spooled = batch.spool({custom_id: 1 for custom_id in ids})
    tally = await batch.emitter.settle_batch(spooled, "b", *result_file(*(ok(custom_id) for custom_id in ids)))
    assert set(batch.on(SETTINGS.topics.results)) == set(ids) and tally.succeeded == len(ids)
    assert not batch.on(SETTINGS.topics.failures) and not batch.runtime.publisher.on(SETTINGS.topics.alerts)


async def test_a_large_batchs_items_leave_the_in_flight_set_chunk_by_chunk_each_once_its_events_are_out(
        batch: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emit_module, "CHUNK", 4)
    ids = [f"item-{n:02d}" for n in range(10)]
    released: list[list[str]] = []

    def leave(settled: list[tuple[str, int]]) -> None:
        published = {m.key for m in batch.runtime.publisher.sent}
        custom_ids = [custom_id for custom_id, _ in settled]
        assert set(custom_ids) <= published, "an item left its batch before its event was published"
        released.append(custom_ids)

    batch.runtime.items_settled = leave
    await batch.emitter.settle_batch(batch.spool({custom_id: 1 for custom_id in ids}), "b", *result_file(
        *(ok(custom_id) for custom_id in ids[:8]), error(ids[8], "invalid_request_error", False)))
    # Two full chunks, then the last (a success and a final failure), then the retry of the item left out.
    assert released == [ids[0:4], ids[4:8], [ids[8]], [ids[9]]]


async def test_a_whole_batch_failure_fails_each_item_and_retries_when_the_cause_allows(batch: Batch) -> None:
    spooled = batch.spool({"a": 1, "b": 3})
    await batch.emitter.fail_batch(spooled, None, ErrorInfo(type="expired", message="past 24 h"), retryable=True)
    assert set(batch.on(SETTINGS.topics.retry)) == {"a"}
    assert {cid: f["final"] for cid, f in batch.on(SETTINGS.topics.failures).items()} == {"a": False, "b": True}


async def test_a_straggling_batchs_unrun_items_with_a_deadline_go_to_the_async_tier(batch: Batch) -> None:
    spooled = batch.spool({"due": 1, "ran": 1, "whenever": 1}, deadlines={"due": NOW + 60, "ran": NOW + 60})
    tally = await batch.emitter.settle_batch(spooled, "b", *result_file(
        error("due", "canceled", True), ok("ran"), error("whenever", "canceled", True)), divert="straggler: late")
    [routed] = batch.runtime.publisher.on(SETTINGS.topics.async_tier)
    assert (routed["custom_id"], routed["tier"], routed["deadline"], routed["route"][-1]) == (
        "due", "async", NOW + 60, "straggler: late")
    assert routed["params"]["messages"] == [{"role": "user", "content": "hi"}] and routed["source_partition"] == 2
    assert set(batch.on(SETTINGS.topics.results)) == {"ran"}  # what finished before the cancel is kept
    assert set(batch.on(SETTINGS.topics.retry)) == {"whenever"}  # no deadline: stays in the batch tier
    assert "due" not in batch.on(SETTINGS.topics.failures) and tally.diverted == 1


async def test_a_straggling_bedrock_jobs_items_keep_their_model_and_invocation_on_the_way(batch: Batch) -> None:
    spool, body = batch.runtime.spool, {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    spool.append("tl-br", orjson.dumps({"recordId": "due", "modelInput": body}),
                 orjson.dumps(ItemContext("due", 1, 0, {}, None, deadline=NOW + 60).encode()))
    spooled = spool.finish("tl-br", BatchGroup("bedrock", "Converse", "us.amazon.nova-lite-v1:0"), 1, 100)
    await batch.emitter.settle_batch(spooled, "arn:job", *result_file(error("due", "batch_cancelled", True)),
                                     divert="straggler: late")
    [routed] = batch.runtime.publisher.on(SETTINGS.topics.async_tier)
    assert (routed["provider"], routed["model"], routed["invocation"], routed["params"]) == (
        "bedrock", "us.amazon.nova-lite-v1:0", "converse", body)


@pytest.mark.parametrize("part_items", [100, 2])  # settled whole, and in parts
async def test_a_result_line_that_is_no_result_is_left_out_and_only_its_item_retried(
        batch: Batch, monkeypatch: pytest.MonkeyPatch, part_items: int) -> None:
    monkeypatch.setattr(spool_module, "PART_ITEMS", part_items)
    spooled = batch.spool({"a": 1, "b": 1, "c": 1, "d": 1})

    async def lines() -> AsyncIterator[list[bytes]]:  # an Anthropic result file with two broken lines in it
        for custom_id in ("a", "c", "d"):
            message = {"model": "claude-haiku-4-5", "content": [], "usage": USAGE}
            yield [orjson.dumps({"custom_id": custom_id, "result": {"type": "succeeded", "message": message}})]
            if custom_id == "a":
                yield [b'{"custom_id": "b", "result": {"type": "succ', b'["custom_id", "b"]']

    tally = await batch.emitter.settle_batch(spooled, "b", lines(), ANTHROPIC_RESULTS)
    assert set(batch.on(SETTINGS.topics.results)) == {"a", "c", "d"} and tally.succeeded == 3
    assert batch.on(SETTINGS.topics.failures)["b"]["error"]["type"] == "missing_result"
    assert set(batch.on(SETTINGS.topics.retry)) == {"b"}


async def test_the_endings_of_a_large_batchs_retries_are_recorded_in_records_that_fit(tmp_path: Path) -> None:
    settings = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "e.", "TIERLINE_KAFKA_MAX_RECORD_BYTES": "16384"})
    runtime = fakes.runtime(settings, tmp_path)  # the fake publisher refuses a record past the limit
    spool = runtime.spool
    for n in range(300):
        context = ItemContext(f"r-{n:03d}", 1, 0, {}, placed_by=("requests", 0, n, 1_800_000_000_000))
        spool.append("tl-big", orjson.dumps({"custom_id": f"r-{n:03d}", "params": {}}), orjson.dumps(context.encode()))
    spooled = spool.finish("tl-big", BatchGroup("anthropic"), 300, 100)
    await Emitter(runtime, clock=lambda: NOW).fail_batch(spooled, "b", ErrorInfo(type="expired", message="24 h"), True)
    ledger = runtime.publisher.on(settings.topics.ledger)
    assert len(ledger) > 1 and len(runtime.publisher.on(settings.topics.retry)) == 300
    assert {tuple(placed) for record in ledger for placed in record["ended"]} == {
        ("requests", 0, n, 1_800_000_000_000) for n in range(300)}
