"""The submitter in-process: a provider with no room for a batch is asked again later, and only a batch an
earlier call may have created is looked for before it is created.

Looking for a batch (``find``) is how a create that may have gone through is never made twice; but for
Anthropic, whose batches carry no mark of tierline's, it takes any batch of the same size created since
the batch's intent and not yet recorded: another worker's, created a moment before. A 429 created
nothing, so the batch it refused is created again without looking.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import orjson
import pytest

from agents.submit_batches import NoRoom, SubmitBatches, submit
from core.limits import BatchGroup
from providers import make_provider
from providers.base import NotYetKnown, ProviderBusy, ProviderUnavailable, SpooledBatch
from streams.settings import Settings
from streams.state.batch_log import BatchJob
from tests import fakes

SETTINGS = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "s."})


class Provider:
    """Answers each create with the next of ``answers`` (an id, or an error to raise); notes each look."""

    name = "anthropic"

    def __init__(self, *answers: str | Exception, found: list[str | None | Exception] | None = None) -> None:
        self.answers = list(answers)
        self.found = found or []  # what each look answers (an id, None, or an error to raise); then None
        self.looked: list[str] = []

    async def submit(self, batch: SpooledBatch) -> str:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def find(self, batch: SpooledBatch, since: float, claimed: set[str]) -> str | None:
        self.looked.append(batch.key)
        answer = self.found.pop(0) if self.found else None
        if isinstance(answer, Exception):
            raise answer
        return answer


async def job_for(tmp_path: Path, provider: Provider) -> tuple[SimpleNamespace, BatchJob]:
    """The tests' in-memory runtime with ``provider``, and a batch of three items whose intent is written."""
    runtime = fakes.runtime(SETTINGS, tmp_path)
    runtime.provider = lambda name: provider
    params = {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    for n in range(3):
        runtime.spool.append("tl-b", orjson.dumps({"custom_id": f"i-{n}", "params": params}),
                             orjson.dumps({"custom_id": f"i-{n}", "attempt": 1, "source_partition": 0, "metadata": {}}))
    spooled = runtime.spool.finish("tl-b", BatchGroup("anthropic"), 3, 300)
    record = await runtime.batch_log.intent(spooled, home=0)
    return runtime, BatchJob(record, spooled, runtime.ownership.generation)


async def test_a_batch_refused_for_room_is_created_later_without_looking_for_it(tmp_path: Path) -> None:
    provider = Provider(ProviderBusy("HTTP 429: the processing queue is full"), "msgbatch_1")
    runtime, job = await job_for(tmp_path, provider)
    polled: list[BatchJob] = []
    with pytest.raises(NoRoom) as refused:
        await submit(runtime, job, polled.append, lambda again: None)
    assert not refused.value.job.resumed
    await submit(runtime, refused.value.job, polled.append, lambda again: None)
    assert [j.record.batch_id for j in polled] == ["msgbatch_1"]
    assert provider.looked == []  # a batch of the same size, another worker's, cannot be taken for it


async def test_a_batch_an_earlier_call_may_have_created_is_looked_for_first(tmp_path: Path) -> None:
    provider = Provider(ProviderUnavailable("timed out"), ProviderBusy("HTTP 429: the processing queue is full"),
                        "msgbatch_2")
    runtime, job = await job_for(tmp_path, provider)
    polled: list[BatchJob] = []
    with pytest.raises(NoRoom) as refused:
        await submit(runtime, job, polled.append, lambda again: None)
    assert refused.value.job.resumed  # the timed-out create may have gone through
    await submit(runtime, refused.value.job, polled.append, lambda again: None)
    assert provider.looked == ["tl-b", "tl-b"]  # before the second create, and before the third
    assert [j.record.batch_id for j in polled] == ["msgbatch_2"]


async def test_a_resumed_batch_waits_while_a_batch_of_its_shape_may_be_another_workers(tmp_path: Path) -> None:
    provider = Provider("msgbatch_3", found=[NotYetKnown(20.0, ["msgbatch_other"]), None])
    runtime, job = await job_for(tmp_path, provider)
    resumed = dataclasses.replace(job, resumed=True)
    polled: list[BatchJob] = []
    again: list[BatchJob] = []
    await submit(runtime, resumed, polled.append, again.append)
    [later] = again
    assert polled == [] and provider.answers == ["msgbatch_3"]  # nothing created meanwhile
    assert later.resumed and 15 < later.not_before - time.time() <= 20
    await submit(runtime, later, polled.append, again.append)  # recorded by then: not found, so created
    assert provider.looked == ["tl-b", "tl-b"]
    assert [j.record.batch_id for j in polled] == ["msgbatch_3"]


async def test_a_resumed_batch_goes_without_the_items_that_succeeded_meanwhile(tmp_path: Path) -> None:
    provider = Provider("msgbatch_1")
    runtime, job = await job_for(tmp_path, provider)
    runtime.ledger.record("tl-other", 0, "msgbatch_0", ["i-1"])  # a twin of it succeeded in another batch
    polled: list[BatchJob] = []
    again: list[BatchJob] = []
    await submit(runtime, dataclasses.replace(job, resumed=True), polled.append, again.append)
    assert polled == [] and provider.answers == ["msgbatch_1"]  # not created as it was
    [replacement] = again
    lines = [orjson.loads(line)["custom_id"] for line in replacement.spooled.input_path.read_bytes().splitlines()]
    assert lines == ["i-0", "i-2"] and replacement.record.replaces == job.record.batch_key
    assert {r.batch_key: r.state for r in runtime.batch_log.records()}[job.record.batch_key] == "superseded"
    assert ("i-1", 1) in sum(runtime.settled, [])
    await submit(runtime, replacement, polled.append, again.append)
    assert [j.record.batch_id for j in polled] == ["msgbatch_1"]


async def test_a_resumed_batch_whose_every_item_succeeded_meanwhile_is_not_created(tmp_path: Path) -> None:
    provider = Provider("msgbatch_1")
    runtime, job = await job_for(tmp_path, provider)
    runtime.ledger.record("tl-other", 0, "msgbatch_0", ["i-0", "i-1", "i-2"])
    again: list[BatchJob] = []
    await submit(runtime, dataclasses.replace(job, resumed=True), lambda polled: None, again.append)
    assert again == [] and provider.answers == ["msgbatch_1"]
    assert [r.state for r in runtime.batch_log.records() if r.batch_key == job.record.batch_key][-1] == "superseded"


async def _submitted_by_the_agent(runtime: SimpleNamespace, job: BatchJob, until: Callable[[], bool]) -> None:
    """The submitter agent's own loop, with its waits for room shortened, until ``until()``."""
    agent = SubmitBatches(runtime, lambda job: None)  # type: ignore[arg-type]
    agent.put(job)
    loop = asyncio.create_task(agent._run(agent))  # a Service.task: called with its service
    try:
        for _ in range(200):
            if until():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("not done")
    finally:
        loop.cancel()


async def test_a_fault_of_tierlines_own_while_submitting_leaves_the_batch_in_hand(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agents.submit_batches.ROOM_FIRST_WAIT_S", 0.01)
    provider = Provider(RuntimeError("a bug of ours"), "msgbatch_1")
    runtime, job = await job_for(tmp_path, provider)
    await _submitted_by_the_agent(runtime, job, lambda: not provider.answers)
    [alert] = runtime.publisher.on(SETTINGS.topics.alerts)
    assert alert["kind"] == "submit_failed" and "RuntimeError: a bug of ours" in alert["message"]
    assert provider.looked == ["tl-b"]  # the failed step may have come after a create: looked for first
    assert [r.batch_id for r in runtime.batch_log.records() if r.state == "submitted"] == ["msgbatch_1"]


async def test_without_its_key_a_providers_batch_waits_with_one_alert(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agents.submit_batches.ROOM_FIRST_WAIT_S", 0.01)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    runtime, job = await job_for(tmp_path, Provider())
    asked: list[str] = []

    def provider(name: str) -> Any:
        asked.append(name)
        return make_provider(name, SETTINGS)

    runtime.provider = provider
    await _submitted_by_the_agent(runtime, job, lambda: len(asked) >= 3)  # asked again and again
    [alert] = runtime.publisher.on(SETTINGS.topics.alerts)
    assert alert["kind"] == "provider_refused" and "set ANTHROPIC_API_KEY" in alert["message"]
    assert runtime.publisher.on(SETTINGS.topics.failures) == []
    assert [r.state for r in runtime.batch_log.records()] == ["intent"]
