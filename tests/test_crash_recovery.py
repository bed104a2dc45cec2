"""Kill tests: a real worker process is killed with SIGKILL at each dangerous point, then restarted.

After each: every item ends with a result event, no custom_id was submitted to the provider
in two batches, and any duplicate result event carries the same content as the first.
The emulator records every batch it created, so submissions are counted per custom_id.
"""

from __future__ import annotations

import asyncio

import pytest

from streams.settings import Settings
from streams.local.workload import LANES, make_items
from tests.support import Workers, follow, log_events, publish, submissions, wait_for_log


def assert_recovered(env: dict[str, str], items: list[dict], emulator_port: int) -> None:
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(Settings.from_env(env), lambda p: ids <= set(p.results), timeout=180))
    assert set(progress.results) == ids
    for cid, events in progress.results.items():
        assert all(event == events[0] for event in events), f"{cid}: duplicates differ"
    counts = submissions(emulator_port)
    assert {cid: counts[cid] for cid in ids} == {cid: 1 for cid in ids}


def test_killed_while_a_batch_is_open(workers: Workers, emulator_port: int) -> None:
    env = workers.env(TIERLINE_BATCH_MAX_WAIT_S="60")
    worker = workers.start(env)
    items = make_items(300, "open")
    publish(env, items)
    wait_for_log(worker, "batch_opened", count=2)
    workers.kill(worker)
    assert not log_events(worker, "batch_closed")

    workers.start(env, TIERLINE_BATCH_MAX_WAIT_S="1")
    assert_recovered(env, items, emulator_port)


@pytest.mark.parametrize("provider", [*LANES, "together", "azure"])  # together: no metadata to find it by
def test_killed_right_after_the_provider_accepted_a_batch(workers: Workers, emulator_port: int,
                                                          provider: str) -> None:
    env = workers.env()
    worker = workers.start(env, TIERLINE_CRASH_AT="after_create")
    items = make_items(200, f"orphan-{provider}", providers=(provider,))
    publish(env, items)
    assert worker.wait(120) == -9, "the worker should have been killed at the crash point"
    assert not log_events(worker, "batch_submitted")

    restarted = workers.start(env)
    assert_recovered(env, items, emulator_port)
    assert log_events(restarted, "orphan_adopted")


def test_killed_while_polling(workers: Workers, emulator_port: int) -> None:
    env = workers.env()
    worker = workers.start(env)
    items = make_items(300, "polling", providers=LANES)
    publish(env, items)
    wait_for_log(worker, "batch_submitted")
    workers.kill(worker)

    restarted = workers.start(env)
    assert_recovered(env, items, emulator_port)
    assert any(line["state"] == "submitted" for line in log_events(restarted, "batch_resumed"))


def test_killed_in_the_middle_of_emitting_results(workers: Workers, emulator_port: int) -> None:
    env = workers.env()
    worker = workers.start(env, TIERLINE_CRASH_AT="mid_emit")
    items = make_items(6_000, "emitting", providers=("anthropic",))  # more than one chunk of events
    publish(env, items)
    assert worker.wait(120) == -9, "the worker should have been killed at the crash point"

    workers.start(env)
    assert_recovered(env, items, emulator_port)


def test_two_workers_share_the_work_and_one_takes_over_when_the_other_is_killed(
        workers: Workers, emulator_port: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = workers.env(TIERLINE_BATCH_MAX_ITEMS="250")
    first = workers.start(env)
    wait_for_log(first, "partitions_assigned")
    second = workers.start(env, TIERLINE_DATA_DIR=str(tmp_path / "second"))
    for worker in (first, second):  # both in the group, two partitions each
        wait_for_log(worker, "partitions_assigned", count=1 if worker is second else 2)
    items = make_items(2_000, "pair")
    publish(env, items)
    wait_for_log(first, "batch_submitted")
    wait_for_log(second, "batch_submitted")
    workers.kill(first)

    assert_recovered(env, items, emulator_port)
    assert [line["partitions"] for line in log_events(second, "partitions_assigned")][-1] == [0, 1, 2, 3]
    assert log_events(second, "batch_resumed"), "the survivor should have taken over the other's batches"
