"""The windowing agent's decisions, driven in-process: fake consumer, in-memory state, an injected clock.

Each test publishes items onto the fake consumer's partitions, runs the agent's rounds
(``step``) and reads what came out: the batches handed to the submitter, their durable
records, the offsets committed, the events published.
"""

from __future__ import annotations

import dataclasses

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from agents.window_items import WindowItems
from core.cost import Billed, PriceTable, estimate_tokens
from core.limits import BatchGroup
from schemas import BatchRecord, ErrorInfo
from streams.emit import Emitter
from streams.settings import Settings
from streams.state.batch_log import BatchJob
from tests import fakes
from tests.clock import Clock
from tests.support import with_deep


def settings_of(**env: str) -> Settings:
    """One partition unless said, so that every custom_id's home is partition 0 (``streams.kafka.homes``)."""
    return Settings.from_env({"TIERLINE_TOPIC_PREFIX": "w.", "TIERLINE_PARTITIONS": "1",
                              "TIERLINE_BATCH_MAX_ITEMS": "3", **env})


SETTINGS = settings_of(TIERLINE_BATCH_MAX_WAIT_S="60", TIERLINE_RETRY_BASE_DELAY_S="5")
FOUR = settings_of(TIERLINE_PARTITIONS="4", TIERLINE_BATCH_MAX_WAIT_S="60")
REQUESTS = [TopicPartition(SETTINGS.topics.requests, p) for p in range(4)]
RETRY = [TopicPartition(SETTINGS.topics.retry, p) for p in range(4)]
R0 = REQUESTS[0]


def item(n: int, model: str = "claude-haiku-4-5", **fields: Any) -> dict[str, Any]:
    return {"custom_id": f"c-{n}", "provider": "anthropic",
            "params": {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": f"say {n}"}]},
            **fields}


class Window:
    """The agent, its fake consumer, and what it handed over."""

    def __init__(self, folder: Path, settings: Settings = SETTINGS) -> None:
        self.clock = Clock(1_800_000_000.0)
        self.runtime = fakes.runtime(settings, folder, clock=self.clock)
        self.consumer = fakes.FakeConsumer()
        self.jobs: list[BatchJob] = []
        self.agent = WindowItems(self.runtime, self.jobs.append, clock=self.clock, consumer=lambda: self.consumer)
        self.runtime.publisher.deliver(self.consumer, settings.topics.requests)  # what it forwards comes back

    @property
    def partitions(self) -> list[TopicPartition]:
        """The requests and retry partitions, all of them."""
        return REQUESTS[:self.runtime.settings.partitions] + RETRY[:self.runtime.settings.partitions]

    async def start(self, assigned: list[TopicPartition] | None = None) -> Window:
        await self.agent.on_start()
        await self.consumer.rebalance(self.partitions if assigned is None else assigned)
        return self

    async def round(self) -> None:
        """One round of the agent, the records it forwarded read at their home, and the batches it closed made
        durable."""
        await self.agent.step()
        while self.agent._closing or self.consumer.unread():
            await asyncio.gather(*self.agent._closing)
            await self.agent.step()
        await self.agent.step()  # commits what became durable

    async def committed(self, tp: TopicPartition) -> int:
        """The group's offset of ``tp`` once everything done is committed (not waiting out the interval)."""
        assert self.agent._intake is not None
        await self.agent._intake.commit(force=True)
        return self.consumer.committed_now(tp)

    def handed(self) -> list[list[str]]:
        """The custom_ids of each batch handed to the submitter, in order."""
        return [sorted(ctx["custom_id"] for ctx in map(orjson.loads, job.spooled.items_path.read_bytes().splitlines()))
                for job in self.jobs]

    def intents(self) -> list[BatchRecord]:
        return [r for r in self.runtime.batch_log.records() if r.state == "intent"]


@pytest.fixture
async def window(tmp_path: Path) -> Window:
    return await Window(tmp_path).start()


async def test_a_batch_closes_at_its_item_cap_and_is_durable_before_the_submitter_sees_it(window: Window) -> None:
    window.consumer.put_json(R0, [item(n) for n in range(5)])
    await window.round()
    assert window.handed() == [["c-0", "c-1", "c-2"]]
    assert [(r.item_count, r.batch_key) for r in window.intents()] == [(3, window.jobs[0].record.batch_key)]
    # Committed past the durable batch's items, not past the two still in the open batch.
    assert window.consumer.committed_now(R0) == 3
    assert [b.count for b in window.agent.window.open_batches()] == [2]


async def test_an_open_batch_closes_once_its_first_item_has_waited_the_maximum(window: Window) -> None:
    window.consumer.put_json(R0, [item(0), item(1)])
    await window.round()
    assert window.jobs == []
    window.clock.now += SETTINGS.batch_max_wait_s - 1
    await window.round()
    assert window.jobs == []
    window.clock.now += 1
    await window.round()
    assert window.handed() == [["c-0", "c-1"]] and window.consumer.committed_now(R0) == 2


def openai_item(n: int, model: str) -> dict[str, Any]:
    return {"custom_id": f"o-{n}", "provider": "openai", "endpoint": "/v1/chat/completions",
            "params": {"model": model, "messages": [{"role": "user", "content": f"say {n}"}]}}


async def test_openai_items_are_batched_per_model_and_anthropic_items_across_models(window: Window) -> None:
    window.consumer.put_json(R0, [openai_item(0, "gpt-4o-mini"), openai_item(1, "gpt-4.1"), item(2),
                                  item(3, model="claude-sonnet-4-5"), openai_item(4, "gpt-4o-mini")])
    await window.round()
    batches = {(b.group.provider, b.group.model): sorted(b.ids) for b in window.agent.window.open_batches()}
    assert batches == {("openai", "gpt-4o-mini"): ["o-0", "o-4"], ("openai", "gpt-4.1"): ["o-1"],
                       ("anthropic", None): ["c-2", "c-3"]}


async def test_the_same_custom_id_twice_is_placed_once(window: Window) -> None:
    window.consumer.put_json(R0, [item(0), item(0), item(1), item(2)])
    await window.round()
    assert window.handed() == [["c-0", "c-1", "c-2"]]
    assert window.consumer.committed_now(R0) == 4


async def test_an_item_that_already_succeeded_is_skipped(window: Window) -> None:
    window.runtime.ledger.record("earlier", 0, "b", ["c-1"])
    window.consumer.put_json(R0, [item(0), item(1)])
    await window.round()
    assert [b.ids for b in window.agent.window.open_batches()] == [{"c-0"}]


async def test_what_the_ledger_knows_is_skipped_by_the_run_the_request_names_at_its_top_level(
        window: Window) -> None:
    window.runtime.ledger.record("earlier", 0, "b", ["c-1", "c-2", ("c-3", "again")])
    window.consumer.put(R0, with_deep(item(1), "metadata", 40))  # read on its head
    window.consumer.put(R0, with_deep(item(2), "metadata", 1000))  # too deep for the head: parsed whole
    window.consumer.put_json(R0, [{**item(4), "metadata": {"custom_id": "c-1"}},  # its own custom_id counts
                                  item(1, reprocess="again"), item(3, reprocess="again")])
    await window.round()
    assert [sorted(b.ids) for b in window.agent.window.open_batches()] == [["c-1", "c-4"]]
    assert window.runtime.publisher.on(SETTINGS.topics.deadletter) == []  # the deep one too: skipped


async def test_a_retry_waits_out_its_not_before_and_holds_the_commit_meanwhile(window: Window) -> None:
    retry = {**item(7), "endpoint": None, "metadata": {}, "attempt": 2, "not_before": window.clock.now + 30,
             "source_partition": 0, "previous_error": {"type": "overloaded_error", "message": "busy"}}
    window.consumer.put_json(RETRY[0], [retry])
    await window.round()
    assert window.agent.window.open_batches() == []
    assert window.consumer.committed_now(RETRY[0]) == 0
    window.clock.now += 31
    await window.round()
    [batch] = window.agent.window.open_batches()
    assert batch.ids == {"c-7"}


async def test_the_commit_stops_at_the_earliest_item_of_a_batch_not_yet_durable(window: Window) -> None:
    window.consumer.put_json(R0, [item(0), openai_item(1, "gpt-4o-mini"), item(2), item(3)])
    await window.round()
    assert window.handed() == [["c-0", "c-2", "c-3"]]
    assert await window.committed(R0) == 1  # the OpenAI item's batch is still open


async def test_a_retry_placed_after_its_delay_leaves_no_hold_behind_once_its_batch_is_durable(window: Window) -> None:
    def retry(n: int, wait_s: float) -> dict[str, Any]:
        return {**item(n), "endpoint": None, "metadata": {}, "attempt": 2, "not_before": window.clock.now + wait_s,
                "source_partition": 0, "previous_error": {"type": "overloaded_error", "message": "busy"}}

    window.consumer.put_json(RETRY[0], [retry(7, 0), retry(8, 30), retry(9, 0)])
    await window.round()
    assert await window.committed(RETRY[0]) == 0  # c-7 and c-9 are in an open batch; c-8 waits
    window.clock.now += 31
    await window.round()  # c-8 joins them, and the batch is full
    assert window.handed() == [["c-7", "c-8", "c-9"]]
    assert await window.committed(RETRY[0]) == 3


async def test_an_intent_the_broker_fails_to_take_is_written_again_and_the_batch_goes_on(
        window: Window, monkeypatch: pytest.MonkeyPatch) -> None:
    publisher, failures = window.runtime.publisher, [KafkaTimeoutError()]
    publish = publisher.publish

    async def busy_once(messages: Any) -> int:
        batch = list(messages)
        if failures and any(m.topic == SETTINGS.topics.batch_items for m in batch):
            raise failures.pop()
        return await publish(batch)

    monkeypatch.setattr(publisher, "publish", busy_once)
    window.consumer.put_json(R0, [item(n) for n in range(3)])
    await window.round()
    assert window.handed() == [["c-0", "c-1", "c-2"]] and len(window.intents()) == 1
    assert await window.committed(R0) == 3


async def test_an_item_the_router_sends_elsewhere_goes_to_the_async_topic(window: Window) -> None:
    window.consumer.put_json(R0, [item(0, tier="async")])
    await window.round()
    [routed] = window.runtime.publisher.on(SETTINGS.topics.async_tier)
    assert (routed["custom_id"], routed["tier"], routed["source_partition"]) == ("c-0", "async", 0)
    assert window.consumer.committed_now(R0) == 1  # its outbox went out before the commit


async def test_a_round_that_closes_many_small_batches_holds_the_files_of_one_open_at_a_time(window: Window) -> None:
    spool, open_files, most = window.runtime.spool, lambda: len(os.listdir("/proc/self/fd")), 0
    append = spool.append

    def counting(batch_key: str, line: bytes, context: bytes) -> None:
        nonlocal most
        append(batch_key, line, context)
        most = max(most, open_files())

    spool.append = counting  # type: ignore[method-assign]
    before = open_files()
    window.consumer.put_json(R0, [item(n) for n in range(300)])
    await window.round()
    assert len(window.jobs) == 100
    # An input and a context file for the batch being filled: not two for each of the 100 closed meanwhile
    # (a round of 8 MB of small items closed thousands, past a process's usual limit of 1,024 files).
    assert most - before <= 2


async def test_a_rebalance_drops_open_batches_and_reads_their_items_again_once(window: Window) -> None:
    window.consumer.put_json(R0, [item(0), item(1)])
    await window.round()
    assert window.consumer.committed_now(R0) == 0
    await window.consumer.rebalance(window.partitions)
    assert window.agent.window.open_batches() == []
    await window.round()
    [batch] = window.agent.window.open_batches()
    assert batch.ids == {"c-0", "c-1"} and batch.count == 2


async def test_a_rebalance_waits_for_a_batch_being_made_durable_and_commits_its_items(window: Window) -> None:
    window.consumer.put_json(R0, [item(n) for n in range(3)])
    await window.agent.step()  # the batch closed; its intent is being written in the background
    assert window.agent._closing
    await window.consumer.rebalance(window.partitions)
    assert window.consumer.committed_now(R0) == 3  # the next owner does not read them again
    assert window.jobs == []  # handed back: the home partition's owner resumes it from the batch log
    assert len(window.intents()) == 1


async def test_assigned_partitions_resume_their_unfinished_batches_and_skip_their_items(window: Window,
                                                                                       tmp_path: Path) -> None:
    spool, group = window.runtime.spool, BatchGroup("anthropic", None, "claude-haiku-4-5")
    for n in (5, 6):
        spool.append("tl-resumed", orjson.dumps({"custom_id": f"c-{n}"}), orjson.dumps(
            {"custom_id": f"c-{n}", "attempt": 1, "source_partition": 0, "metadata": {}}))
    spooled = spool.finish("tl-resumed", group, 2, 100)
    record = BatchRecord(batch_key="tl-resumed", provider="anthropic", state="submitted", item_count=2,
                         batch_id="msgbatch_1", home=0)
    window.runtime.batch_log.to_resume = [BatchJob(record, spooled, 0)]
    await window.consumer.rebalance(window.partitions)
    assert [job.record.batch_key for job in window.jobs] == ["tl-resumed"]
    assert window.runtime.ownership.owns("tl-resumed")
    window.consumer.put_json(R0, [item(5), item(8)])  # c-5 is in the resumed batch: not placed twice
    await window.round()
    assert [b.ids for b in window.agent.window.open_batches()] == [{"c-8"}]


async def test_items_in_a_batch_homed_elsewhere_that_the_commit_did_not_pass_are_not_placed_again(
        tmp_path: Path) -> None:
    # Another worker read c-0 and c-2 from partition 2 (their home) into a batch homed in its partition 0, still
    # at the provider; its commit past them did not land before partition 2 came here (and c-24, past its
    # sources, did).
    window = await Window(tmp_path, FOUR).start([REQUESTS[2], RETRY[2]])
    other = window.runtime.spool
    for n in (0, 2):
        other.append("tl-elsewhere", orjson.dumps({"custom_id": f"c-{n}"}), orjson.dumps(
            {"custom_id": f"c-{n}", "attempt": 1, "source_partition": 2, "metadata": {}}))
    spooled = other.finish("tl-elsewhere", BatchGroup("anthropic", None, "claude-haiku-4-5"), 2, 100)
    record = await window.runtime.batch_log.intent(spooled, 0, sources=[(REQUESTS[2].topic, 2, 1)])
    await window.runtime.batch_log.record(dataclasses.replace(record, state="submitted", batch_id="msgbatch_1"))
    await window.consumer.rebalance([REQUESTS[2], RETRY[2]])
    window.consumer.put_json(REQUESTS[2], [item(0), item(2), item(24)])
    await window.round()
    assert [b.ids for b in window.agent.window.open_batches()] == [{"c-24"}]  # billed once, by the other worker
    assert window.runtime.batch_log.asked[-1] == {2}


async def test_a_batch_past_the_daily_budget_is_held_and_its_items_not_committed(tmp_path: Path) -> None:
    settings = settings_of(TIERLINE_DAILY_BUDGET_USD="0.0000001")
    window = await Window(tmp_path, settings).start()
    window.consumer.put_json(R0, [item(n) for n in range(3)])
    await window.round()
    assert window.jobs == [] and window.agent.held_count == 1
    assert window.consumer.committed_now(R0) == 0


async def test_with_a_budget_each_batch_is_released_once_the_shared_budget_grants_it(tmp_path: Path) -> None:
    one = item(0)
    prices = PriceTable.load(SETTINGS.prices_path, SETTINGS.catalogue.pricing())
    estimate = 3 * prices.batch_usd("anthropic", "claude-haiku-4-5",
                                    Billed(*estimate_tokens(one["params"], len(orjson.dumps(one)))))
    settings = settings_of(TIERLINE_DAILY_BUDGET_USD=str(estimate * 1.5))  # room for one batch
    window = await Window(tmp_path, settings).start()
    window.consumer.put_json(R0, [item(n) for n in range(6)])
    await window.round()
    await asyncio.sleep(0.05)  # the grant, and the first batch made durable
    await window.round()
    assert [job.spooled.count for job in window.jobs] == [3] and window.agent.held_count == 1
    assert window.runtime.spend.log.decision(window.jobs[0].record.batch_key, 0) is True


def bedrock_item(n: int) -> dict[str, Any]:
    return {"custom_id": f"b-{n}", "provider": "bedrock", "model": "us.amazon.nova-lite-v1:0", "invocation": "converse",
            "params": {"messages": [{"role": "user", "content": [{"text": f"say {n}"}]}]}}


def short_of_bedrocks_minimum(**more: str) -> Settings:
    return settings_of(TIERLINE_BATCH_MAX_ITEMS="10000", TIERLINE_BATCH_MAX_WAIT_S="60",
                       TIERLINE_UNDERFILLED_WAIT_S="30", TIERLINE_BEDROCK_MIN_RECORDS="5", **more)


async def test_a_bedrock_group_that_never_reaches_the_minimum_goes_to_the_async_tier(tmp_path: Path) -> None:
    settings = short_of_bedrocks_minimum()
    window = await Window(tmp_path, settings).start()
    window.consumer.put_json(R0, [bedrock_item(n) for n in range(3)])
    await window.round()
    window.clock.now += 60 + 30
    await window.round()
    assert window.jobs == [] and window.agent.window.open_batches() == []
    routed = window.runtime.publisher.on(settings.topics.async_tier)
    assert sorted(r["custom_id"] for r in routed) == ["b-0", "b-1", "b-2"]
    for r in routed:
        assert (r["tier"], r["model"], r["invocation"]) == ("async", "us.amazon.nova-lite-v1:0", "converse")
        assert r["params"] == bedrock_item(int(r["custom_id"][2:]))["params"]
        [why] = r["route"][-1:]
        assert why.startswith("below_minimum: only 3 items arrived within 90 s") and "Converse at full price" in why
    assert window.runtime.publisher.on(settings.topics.failures) == []
    assert await window.committed(R0) == 3


async def test_with_the_fallback_off_they_fail_saying_why(tmp_path: Path) -> None:
    settings = short_of_bedrocks_minimum(TIERLINE_BEDROCK_SYNC_FALLBACK="false")
    window = await Window(tmp_path, settings).start()
    window.consumer.put_json(R0, [bedrock_item(n) for n in range(3)])
    await window.round()
    window.clock.now += 60 + 30
    await window.round()
    assert window.runtime.publisher.on(settings.topics.async_tier) == []
    failures = window.runtime.publisher.on(settings.topics.failures)
    assert sorted(f["custom_id"] for f in failures) == ["b-0", "b-1", "b-2"]
    assert {(f["error"]["type"], f["final"]) for f in failures} == {("below_minimum_records", True)}
    assert await window.committed(R0) == 3


async def _restarted(window: Window, folder: Path) -> Window:
    """Another worker (or this one after a restart) on the same records, its ledger read from what was published."""
    again = Window(folder)
    ledger = window.runtime.publisher.on(SETTINGS.topics.ledger)
    for offset, doc in enumerate(ledger):
        again.runtime.ledger.take(SimpleNamespace(value=orjson.dumps(doc), partition=0, offset=offset))
    again.consumer.logs = window.consumer.logs  # the same records, at the same offsets
    return await again.start()


async def test_a_record_read_again_after_its_attempt_ended_is_not_run_again_but_one_published_anew_is(
        window: Window, tmp_path: Path) -> None:
    window.consumer.put_json(R0, [item(n) for n in range(3)])
    await window.round()
    [job] = window.jobs
    emitter = Emitter(window.runtime, clock=window.clock)
    await emitter.fail_batch(job.spooled, "msgbatch_1", ErrorInfo(type="overloaded_error", message="busy"), True)
    retries = window.runtime.publisher.on(SETTINGS.topics.retry)
    assert len(retries) == 3
    for retry in retries:  # the retries, on the retry topic, after their delay
        window.consumer.put(RETRY[0], orjson.dumps({**retry, "not_before": 0}), key=retry["custom_id"].encode())

    # Read again from the start (nothing committed survived, say): the requests' attempts have ended.
    restarted = await _restarted(window, tmp_path / "again")
    await restarted.round()
    assert restarted.handed() == [["c-0", "c-1", "c-2"]]  # the retries' attempts, not the requests' again
    assert [ctx["attempt"] for ctx in map(orjson.loads, restarted.jobs[0].spooled.items_path.read_bytes()
                                           .splitlines())] == [2, 2, 2]
    [retried] = restarted.jobs
    await Emitter(restarted.runtime, clock=restarted.clock).fail_batch(
        retried.spooled, "msgbatch_2", ErrorInfo(type="invalid_request_error", message="no"), False)
    assert len([f for f in restarted.runtime.publisher.on(SETTINGS.topics.failures) if f["final"]]) == 3

    # Once more: the requests and the retries have all ended; the same custom_id published anew runs.
    window.runtime.publisher.sent += restarted.runtime.publisher.sent
    again = await _restarted(window, tmp_path / "once-more")
    again.consumer.put_json(R0, [item(0)])  # tierline replay: a new record
    await again.round()
    [open_batch] = again.agent.window.open_batches()
    assert open_batch.ids == {"c-0"} and again.jobs == []


async def test_a_retry_read_before_its_batch_said_the_item_is_out_is_placed_and_its_twin_is_not(
        window: Window) -> None:
    """The settle of attempt 1 publishes the retry, then says the item left its batch: the window may read the
    retry in between. It is the next attempt, not a duplicate (it was skipped, and the item lost)."""
    window.consumer.put_json(R0, [item(7), item(8), item(9)])
    await window.round()
    assert window.handed() == [["c-7", "c-8", "c-9"]]  # at the provider: c-7 in flight at attempt 1
    retry = {**item(7), "endpoint": None, "metadata": {}, "attempt": 2, "not_before": 0,
             "source_partition": 0, "previous_error": {"type": "overloaded_error", "message": "busy"}}
    window.consumer.put_json(RETRY[0], [retry, retry])  # a batch settled twice feeds it back twice
    await window.round()
    [batch] = window.agent.window.open_batches()
    assert batch.ids == {"c-7"} and batch.count == 1  # attempt 2, once: its twin was skipped
    window.agent.items_left_batch([("c-7", 1)])  # attempt 1's settle says so only now
    window.consumer.put_json(RETRY[0], [retry])
    await window.round()
    assert window.agent.window.open_batches()[0].count == 1  # attempt 2 is still in flight: a twin again


def waiting_retry(n: int, not_before: float) -> dict[str, Any]:
    return {**item(n), "endpoint": None, "metadata": {}, "attempt": 2, "not_before": not_before,
            "source_partition": 0, "previous_error": {"type": "overloaded_error", "message": "busy"}}


async def test_a_retry_waiting_long_is_parked_so_that_the_commit_passes_the_work_behind_it(
        window: Window, tmp_path: Path) -> None:
    due = window.clock.now + 3000  # fifty minutes
    window.consumer.put_json(RETRY[0], [waiting_retry(7, due), *(waiting_retry(n, 0) for n in (8, 9, 10))])
    await window.round()
    assert window.handed() == [["c-10", "c-8", "c-9"]]  # durable: only the waiting c-7 holds the commit back
    assert await window.committed(RETRY[0]) == 0
    window.clock.now += 301
    await window.round()
    [copy] = window.runtime.publisher.on(SETTINGS.topics.retry)
    assert {key: copy[key] for key in waiting_retry(7, due)} == waiting_retry(7, due)  # the same retry, whole
    assert await window.committed(RETRY[0]) == 4  # past c-7's old record and the batch behind it
    old = window.consumer.logs[RETRY[0]][0]
    assert window.runtime.ledger.has_ended((f"retry@{SETTINGS.app_id}", 0, 0, old.timestamp))

    window.consumer.put(RETRY[0], orjson.dumps(copy), key=b"c-7")  # the copy, read back: it waits on
    await window.round()
    assert await window.committed(RETRY[0]) == 4 and window.agent.window.open_batches() == []
    window.clock.now += 301
    await window.round()  # nothing behind the copy: parking it again would gain nothing
    assert len(window.runtime.publisher.on(SETTINGS.topics.retry)) == 1

    # A restart that lost the commits reads the old record again: its attempt ended, the copy's runs, once.
    again = await _restarted(window, tmp_path / "again")
    again.clock.now = due + 1
    await again.round()
    [batch] = again.agent.window.open_batches()
    assert batch.ids == {"c-7"} and batch.count == 1


async def test_retries_that_only_hold_back_one_another_are_not_parked(window: Window) -> None:
    window.consumer.put_json(RETRY[0], [waiting_retry(7, window.clock.now + 3000),
                                        waiting_retry(8, window.clock.now + 3000)])
    await window.round()
    window.clock.now += 301
    await window.round()
    assert window.runtime.publisher.on(SETTINGS.topics.retry) == [] and await window.committed(RETRY[0]) == 0


async def test_a_twin_of_a_retry_read_after_its_attempt_ended_is_not_run_again(window: Window,
                                                                                tmp_path: Path) -> None:
    """A batch settled twice (after a crash) feeds the same retry back twice; the second may be read long after
    the first ran and failed for good."""
    window.consumer.put_json(RETRY[0], [waiting_retry(n, 0) for n in (7, 8, 9)])
    await window.round()
    [job] = window.jobs
    await Emitter(window.runtime, clock=window.clock).fail_batch(
        job.spooled, "msgbatch_1", ErrorInfo(type="invalid_request_error", message="no"), False)
    window.agent.items_left_batch(sum(window.runtime.settled, []))  # as the poller says, once settled
    window.consumer.put_json(RETRY[0], [waiting_retry(7, 0)])  # the twin
    await window.round()
    assert window.agent.window.open_batches() == []
    # Another worker (or this one restarted) reads the ledger: the same.
    again = await _restarted(window, tmp_path / "again")
    again.consumer.group = {RETRY[0]: 3}
    await again.consumer.rebalance(again.partitions)
    await again.round()
    assert again.agent.window.open_batches() == [] and again.jobs == []
    window.consumer.put_json(RETRY[0], [{**waiting_retry(7, 0), "attempt": 3}])  # another attempt: it runs
    await window.round()
    assert window.agent.window.open_batches()[0].ids == {"c-7"}


# -- away from home: records a producer put on another partition than their custom_id's ----------------------


def at_home(window: Window, tp: TopicPartition) -> list[tuple[str, tuple[tuple[str, bytes], ...], int]]:
    """The custom_ids, headers and timestamps of the records on ``tp``."""
    return [(orjson.loads(r.value)["custom_id"], r.headers, r.timestamp) for r in window.consumer.logs[tp]]


async def test_a_request_away_from_its_home_is_forwarded_there_whole_once_and_batched_there(tmp_path: Path) -> None:
    window = await Window(tmp_path, FOUR).start()
    away = window.consumer.put(REQUESTS[0], orjson.dumps(item(1)), key=None, timestamp_ms=1_700_000_000_000,
                               headers=(("trace", b"t-1"),))  # c-1's home is partition 3
    window.consumer.put_json(REQUESTS[0], [item(4)])  # at home
    await window.round()
    assert at_home(window, REQUESTS[3]) == [("c-1", (("trace", b"t-1"), ("tierline-from", b"0:0:1700000000000")),
                                              1_700_000_000_000)]
    assert window.consumer.logs[REQUESTS[3]][0].value == away.value  # byte for byte
    assert [sorted(b.ids) for b in window.agent.window.open_batches()] == [["c-1", "c-4"]]
    assert await window.committed(REQUESTS[0]) == 1  # past the forwarded record; c-4 holds the rest
    assert len(window.consumer.logs[REQUESTS[3]]) == 1  # read at home, not forwarded again


async def test_one_custom_id_on_two_partitions_of_two_workers_is_run_once(tmp_path: Path) -> None:
    """Producers that partition differently (librdkafka's crc32, say) put c-0 on partitions 0 and 2 (its home),
    owned by two workers: the copy away from home is forwarded, and the home's owner places one of them."""
    first = await Window(tmp_path / "a", FOUR).start([REQUESTS[0], REQUESTS[1], RETRY[0], RETRY[1]])
    second = Window(tmp_path / "b", FOUR)
    second.consumer.logs = first.consumer.logs  # one broker
    await second.start([REQUESTS[2], REQUESTS[3], RETRY[2], RETRY[3]])
    first.consumer.put_json(REQUESTS[0], [item(0)])
    first.consumer.put_json(REQUESTS[2], [item(0)])
    for _ in range(2):
        await first.round()
        await second.round()
    assert first.agent.window.open_batches() == []
    [batch] = second.agent.window.open_batches()
    assert batch.ids == {"c-0"} and batch.count == 1


async def test_a_record_forwarded_twice_is_not_run_again_once_its_attempt_has_ended(tmp_path: Path) -> None:
    """A worker that dies after forwarding, before its commit, forwards the same record again: both copies name
    the record they were first read as, and its attempt runs once."""
    window = await Window(tmp_path, FOUR).start()
    window.consumer.put_json(REQUESTS[2], [item(n) for n in (1, 11, 12)])  # each at home in partition 3
    await window.round()
    [job] = window.jobs
    await Emitter(window.runtime, clock=window.clock).fail_batch(
        job.spooled, "msgbatch_1", ErrorInfo(type="invalid_request_error", message="no"), False)
    window.agent.items_left_batch(sum(window.runtime.settled, []))
    for copy in list(window.consumer.logs[REQUESTS[3]]):  # the second forward of each
        window.consumer.put(REQUESTS[3], copy.value, copy.key, copy.timestamp, copy.headers)
    await window.round()
    assert window.agent.window.open_batches() == [] and len(window.jobs) == 1
    window.consumer.put_json(REQUESTS[2], [item(1)])  # published anew: another record, which runs
    await window.round()
    assert [b.ids for b in window.agent.window.open_batches()] == [{"c-1"}]


async def test_a_retry_away_from_its_home_is_forwarded_to_its_home_on_the_retry_topic(tmp_path: Path) -> None:
    window = await Window(tmp_path, FOUR).start()
    window.runtime.publisher.deliver(window.consumer, FOUR.topics.retry)
    window.consumer.put_json(RETRY[1], [waiting_retry(1, 0)])  # c-1's home is partition 3
    await window.round()
    assert [cid for cid, _, _ in at_home(window, RETRY[3])] == ["c-1"]
    [batch] = window.agent.window.open_batches()
    assert batch.ids == {"c-1"} and await window.committed(RETRY[1]) == 1
