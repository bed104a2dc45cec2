"""A provider without room is not a failure: full queues and capacity refusals make items wait, never fail.

The emulator keeps OpenAI's enqueued-token limit (a batch past it is accepted, then fails
validation with ``token_limit_exceeded``) and Anthropic's processing-queue limit (a create past
it gets 429), each sized so that only two or three batches fit at once. Every good item must end
with exactly one result on its first attempt: nothing failed, no attempt counted.
"""

from __future__ import annotations

import asyncio
from typing import Iterator

import orjson
import pytest

from core.validation import Accepted, validate
from streams.local.workload import make_items
from streams.settings import Settings
from tests.support import Workers, follow, log_events, publish_items, slow_emulator_workers, topic_values

N_PER_PROVIDER = 1_500
BATCH_ITEMS = 250
FITS = 2.5  # batches of one model the provider takes at once


def openai_tokens(items: list[dict]) -> int:
    """A batch's input tokens as the emulator counts them: its lines' bytes / 4."""
    lines = []
    for item in items:
        verdict = validate(orjson.dumps(item), Settings().catalogue)
        assert isinstance(verdict, Accepted)
        lines.append(verdict.line)
    return sum(len(line) for line in lines) // 4


ITEMS = [item for item in make_items(4 * N_PER_PROVIDER, "cap", providers=("anthropic", "openai"))
         if item["provider"] == "anthropic" or item["params"]["model"] == "gpt-4o-mini"]
ANTHROPIC = [item for item in ITEMS if item["provider"] == "anthropic"][:N_PER_PROVIDER]
OPENAI = [item for item in ITEMS if item["provider"] == "openai"][:N_PER_PROVIDER]
TOKEN_LIMIT = int(FITS * openai_tokens(OPENAI[:BATCH_ITEMS]))
QUEUE_LIMIT = int(FITS * BATCH_ITEMS)


@pytest.fixture(scope="module")
def crowded(broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 3, "--enqueued-token-limit", str(TOKEN_LIMIT),
                               "--anthropic-queue-limit", str(QUEUE_LIMIT)) as pool:
        yield pool


@pytest.fixture(scope="module")
def run(crowded: Workers):  # type: ignore[no-untyped-def]
    env = crowded.env(TIERLINE_BATCH_MAX_ITEMS=str(BATCH_ITEMS))
    proc = crowded.start(env)
    settings = Settings.from_env(env)
    items = ANTHROPIC + OPENAI
    publish_items(settings, items)
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=420))
    return items, progress, proc


def test_every_item_ends_with_one_result_on_its_first_attempt(run) -> None:  # type: ignore[no-untyped-def]
    items, progress, _proc = run
    assert set(progress.results) == {item["custom_id"] for item in items}
    assert all(len(events) == 1 and events[0]["attempt"] == 1 for events in progress.results.values())
    assert not progress.failures  # not even a retryable one: capacity is nobody's failure


def test_the_openai_queue_was_full_and_those_batches_went_again_whole(run) -> None:  # type: ignore[no-untyped-def]
    _items, _progress, proc = run
    requeued = log_events(proc, "batch_requeued")
    assert requeued and all("token_limit_exceeded" in event["error"] for event in requeued)
    assert {event["items"] for event in requeued} == {BATCH_ITEMS}


def test_anthropic_creates_refused_for_capacity_waited_for_room(run) -> None:  # type: ignore[no-untyped-def]
    _items, _progress, proc = run
    waits = [e for e in log_events(proc, "batch_waiting_for_room") if e["provider"] == "anthropic"]
    assert waits and all("429" in event["error"] for event in waits)
    assert not log_events(proc, "batch_rejected")


@pytest.fixture(scope="module")
def admitted(crowded: Workers):  # type: ignore[no-untyped-def]
    """tierline's own limit, below one batch's tokens: each batch is split, and the parts wait their turn."""
    limit = int(0.6 * TOKEN_LIMIT / FITS)
    env = crowded.env(TIERLINE_BATCH_MAX_ITEMS=str(BATCH_ITEMS), TIERLINE_ENQUEUED_TOKEN_LIMITS=f"openai/*={limit}")
    proc = crowded.start(env)
    settings = Settings.from_env(env)
    publish_items(settings, OPENAI)
    ids = {item["custom_id"] for item in OPENAI}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=420))
    statuses = asyncio.run(every_status(settings))
    return progress, proc, limit, statuses


async def every_status(settings: Settings) -> list[dict]:
    """Every value written to tierline.batch-status, oldest first: what tierline status showed meanwhile."""
    return await topic_values(settings, settings.topics.batch_status)


def test_with_tierlines_own_limit_no_batch_ever_finds_the_queue_full(admitted) -> None:  # type: ignore[no-untyped-def]
    progress, proc, limit, statuses = admitted
    assert set(progress.results) == {item["custom_id"] for item in OPENAI} and not progress.failures
    assert not log_events(proc, "batch_requeued")  # the provider never said token_limit_exceeded
    split = log_events(proc, "batch_split_for_queue")
    assert split and {event["parts"] for event in split} == {2}
    held = log_events(proc, "batch_held_for_queue")
    assert held and all(event["estimated_tokens"] <= limit for event in held)
    shown = {s["batch_key"] for s in statuses if s["provider_status"] == "held_for_queue"}
    assert shown == {event["batch_key"] for event in held}  # tierline status showed each while held
