"""The poller in-process: a batch is asked after until it ends, then settled once; between two polls
nothing runs for it, and a batch handed back in a rebalance is asked after no more.

A stand-in provider answers the statuses it is given, then the batch's results; the runtime is the
tests' in-memory one, publishing to a list.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import AsyncIterator

import orjson

from agents.poll_batches import PollBatches
from core.limits import BatchGroup
from core.outcomes import ItemContext, ItemOutcome
from providers.base import BatchStatus, ProviderError, ProviderUnavailable
from providers.status_board import StatusBoard
from schemas import BatchRecord
from streams.settings import Settings
from streams.state.batch_log import BatchJob
from tests import fakes

SETTINGS = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "p.", "TIERLINE_POLL_INITIAL_S": "0.05",
                              "TIERLINE_POLL_MAX_S": "0.1"})
RUNNING = BatchStatus("in_progress", False, {"processing": 2})
ENDED = BatchStatus("ended", True, {"succeeded": 2})


class Provider:
    """Answers each status in turn (the last one from then on), then a success for every item."""

    name = "anthropic"

    def __init__(self, *statuses: BatchStatus | ProviderError) -> None:
        self.statuses = list(statuses)
        self.asked = 0
        self.discarded: list[str] = []
        self.cancelled: list[str] = []

    async def status(self, batch_id: str) -> BatchStatus:
        self.asked += 1
        answer = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    async def cancel(self, batch_id: str) -> None:
        self.cancelled.append(batch_id)

    result_format = fakes.RESULT_FORMAT

    async def result_lines(self, batch_id: str) -> AsyncIterator[list[bytes]]:
        yield [fakes.result_line(ItemOutcome(custom_id, {"model": "claude-haiku-4-5", "content": []},
                                             {"input_tokens": 10, "output_tokens": 5}, None)) for custom_id in "ab"]

    async def discard_input(self, batch_id: str) -> None:
        self.discarded.append(batch_id)


class Board(StatusBoard):
    """The real status board, noting which batches it was told to forget."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(provider)  # type: ignore[arg-type]
        self.forgotten: list[str] = []

    def forget(self, batch_id: str) -> None:
        self.forgotten.append(batch_id)
        super().forget(batch_id)


CLAUDE = BatchGroup("anthropic", None, "claude-haiku-4-5")


def setup(folder: Path, provider: Provider, created_at: float | None = None,
          group: BatchGroup = CLAUDE) -> tuple[SimpleNamespace, PollBatches, BatchJob]:
    runtime = fakes.runtime(SETTINGS, folder)
    runtime.board = board = Board(provider)
    runtime.provider = lambda name: provider
    runtime.statuses = lambda name: board
    for custom_id in ("a", "b"):
        runtime.spool.append("tl-p", orjson.dumps({"custom_id": custom_id, "params": {}}),
                             orjson.dumps(ItemContext(custom_id, 1, 0, {}).encode()))
    spooled = runtime.spool.finish("tl-p", group, 2, 100)
    record = BatchRecord(batch_key="tl-p", provider=group.provider, state="submitted", item_count=2,
                         model=group.model, batch_id="msgbatch_1", at=time.time(),
                         created_at=created_at or time.time())
    runtime.ownership.claim("tl-p", time.time())
    return runtime, PollBatches(runtime, resubmit=lambda job: None), BatchJob(record, spooled, generation=0)  # type: ignore[arg-type]


async def until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_batch_is_asked_after_until_it_ends_then_settled_once(tmp_path: Path) -> None:
    provider = Provider(RUNNING, RUNNING, RUNNING, ENDED)
    runtime, poller, job = setup(tmp_path, provider)
    poller.put(job)
    await until(lambda: provider.discarded)
    await asyncio.sleep(0.3)  # nothing more is asked of an ended batch
    assert provider.asked == 4
    assert sorted(doc["custom_id"] for doc in runtime.publisher.on(SETTINGS.topics.results)) == ["a", "b"]
    assert [r.state for r in runtime.batch_log.records()] == ["ended"]
    assert not runtime.ownership.owns("tl-p") and not Path(job.spooled.folder).exists()


async def test_between_polls_nothing_runs_for_a_batch(tmp_path: Path) -> None:
    provider = Provider(RUNNING)
    runtime, poller, job = setup(tmp_path, provider)
    before = asyncio.all_tasks()
    poller.put(job)
    await until(lambda: provider.asked == 2)
    await asyncio.sleep(0)  # the poll's task ends once it has set its timer
    # Hours at the provider cost a batch a timer, not a suspended task.
    assert asyncio.all_tasks() - before == set()
    assert provider.asked == 2
    runtime.ownership.stop_following()


async def test_a_batch_handed_back_between_polls_is_asked_after_no_more(tmp_path: Path) -> None:
    provider = Provider(RUNNING)
    runtime, poller, job = setup(tmp_path, provider)
    poller.put(job)
    await until(lambda: provider.asked == 1)
    await runtime.ownership.hand_back()
    await asyncio.sleep(0.5)  # past several polling intervals
    assert provider.asked == 1
    assert runtime.publisher.on(SETTINGS.topics.results) == []
    assert runtime.board.forgotten == ["msgbatch_1"]  # nothing of it is kept here any more


async def test_while_the_provider_is_unreachable_the_expiry_it_gave_still_holds(tmp_path: Path) -> None:
    # Created two days ago, past Anthropic's documented 24 h, but the provider said it expires in an hour.
    later = BatchStatus("in_progress", False, {"processing": 2}, expires_at=time.time() + 3_600)
    provider = Provider(later, ProviderUnavailable("503 from the provider"))
    runtime, poller, job = setup(tmp_path, provider, created_at=time.time() - 2 * 86_400)
    poller.put(job)
    await until(lambda: provider.asked >= 3)
    assert provider.cancelled == []  # not taken for expired, cancelled and its items run again elsewhere
    assert runtime.publisher.on(SETTINGS.topics.failures) == []
    runtime.ownership.stop_following()


BELOW = BatchStatus("Failed", True, {}, rejection="Batch job contains less records (2) than the required minimum of: "
                    "100", below_minimum=100)


BEDROCK = BatchGroup("bedrock", "InvokeModel", "anthropic.claude-3-5-haiku-20241022-v1:0")


async def test_a_batch_under_the_accounts_minimum_goes_to_the_synchronous_api_item_by_item(tmp_path: Path) -> None:
    provider = Provider(BELOW)
    runtime, poller, job = setup(tmp_path, provider, group=BEDROCK)
    poller.put(job)
    await until(lambda: runtime.publisher.on(SETTINGS.topics.async_tier))
    await until(lambda: [r.state for r in runtime.batch_log.records()] == ["ended"])
    diverted = runtime.publisher.on(SETTINGS.topics.async_tier)
    assert sorted(item["custom_id"] for item in diverted) == ["a", "b"]
    assert "TIERLINE_BEDROCK_MIN_RECORDS" in diverted[0]["route"][-1] and "to 100" in diverted[0]["route"][-1]
    assert runtime.publisher.on(SETTINGS.topics.failures) == []  # nothing is wrong with the items


async def test_with_the_fallback_off_the_items_fail_saying_which_setting_to_raise(tmp_path: Path) -> None:
    provider = Provider(BELOW)
    runtime, poller, job = setup(tmp_path, provider, group=BEDROCK)
    runtime.settings = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "p.", "TIERLINE_POLL_INITIAL_S": "0.05",
                                          "TIERLINE_BEDROCK_SYNC_FALLBACK": "false"})
    poller.put(job)
    await until(lambda: len(runtime.publisher.on(SETTINGS.topics.failures)) == 2)
    failures = runtime.publisher.on(SETTINGS.topics.failures)
    assert {f["error"]["type"] for f in failures} == {"below_minimum_records"} and all(f["final"] for f in failures)
    assert "raise that setting to 100" in failures[0]["error"]["message"]


class Faulty(Provider):
    """Raises a bug of tierline's own kind the first time its status, or its results, are asked for."""

    def __init__(self, *statuses: BatchStatus | ProviderError, in_results: bool = False) -> None:
        super().__init__(*statuses)
        self.faults = {"results" if in_results else "status": 1}

    async def status(self, batch_id: str) -> BatchStatus:
        if self.faults.pop("status", 0):
            raise KeyError("state")
        return await super().status(batch_id)

    async def result_lines(self, batch_id: str) -> AsyncIterator[list[bytes]]:
        if self.faults.pop("results", 0):
            raise TypeError("a bug while reading the results")
        async for lines in super().result_lines(batch_id):
            yield lines


async def test_a_fault_of_tierlines_own_while_polling_keeps_the_batch_followed(tmp_path: Path) -> None:
    provider = Faulty(RUNNING, ENDED)
    runtime, poller, job = setup(tmp_path, provider)
    poller.put(job)
    await until(lambda: [r.state for r in runtime.batch_log.records()] == ["ended"])
    [alert] = runtime.publisher.on(SETTINGS.topics.alerts)
    assert alert["kind"] == "poll_failed" and "KeyError" in alert["message"]
    assert sorted(doc["custom_id"] for doc in runtime.publisher.on(SETTINGS.topics.results)) == ["a", "b"]


async def test_a_fault_of_tierlines_own_while_settling_settles_the_batch_later(tmp_path: Path) -> None:
    provider = Faulty(ENDED, in_results=True)
    runtime, poller, job = setup(tmp_path, provider)
    poller.put(job)
    await until(lambda: [r.state for r in runtime.batch_log.records()] == ["ended"])
    assert [a["kind"] for a in runtime.publisher.on(SETTINGS.topics.alerts)] == ["settle_failed"]
    assert sorted(doc["custom_id"] for doc in runtime.publisher.on(SETTINGS.topics.results)) == ["a", "b"]


async def test_a_batch_whose_provider_counts_its_requests_is_polled_when_that_pace_says_it_ends(
        tmp_path: Path) -> None:
    # Half its requests done 0.2 s after its create: done about 0.2 s from now. The backoff alone would next ask
    # in 30 s, and the test would time out.
    settings = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "p.", "TIERLINE_POLL_INITIAL_S": "30"})
    half = BatchStatus("in_progress", False, {"total": 2, "completed": 1, "failed": 0}, progress=(1, 2))
    provider = Provider(half, ENDED)
    runtime, poller, job = setup(tmp_path, provider, created_at=time.time() - 0.2)
    runtime.settings = settings
    poller.put(job)
    await until(lambda: provider.discarded, timeout_s=15)
    assert provider.asked == 2
    assert sorted(doc["custom_id"] for doc in runtime.publisher.on(SETTINGS.topics.results)) == ["a", "b"]


async def test_a_batch_without_counts_to_go_by_waits_for_the_backoff(tmp_path: Path) -> None:
    settings = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "p.", "TIERLINE_POLL_INITIAL_S": "30"})
    provider = Provider(RUNNING, ENDED)  # Anthropic's counts: nothing moves until the end
    runtime, poller, job = setup(tmp_path, provider, created_at=time.time() - 0.2)
    runtime.settings = settings
    poller.put(job)
    await asyncio.sleep(1.0)  # past twice the least wait before a forecast poll
    assert provider.asked == 1
    runtime.ownership.stop_following()
