"""Replay: re-consuming the requests topic submits nothing that succeeded; ``tierline replay`` publishes
again only what did not succeed; a named reprocess runs items again, once per name."""

from __future__ import annotations

import asyncio
import subprocess

from aiokafka import ConsumerRecord

from streams.cli.replay import Replayed, _again
from streams.kafka.connection import KafkaConnection
from streams.kafka.homes import forward
from streams.local.stack import stop, tierline_argv
from streams.state.ledger import Ledger
from streams.settings import Settings
from streams.local.workload import make_items
from tests.support import Workers, committed_to_end, follow, publish, submissions


def replay(env: dict[str, str], *args: str) -> str:
    """``tierline replay`` run as an operator runs it; what it printed."""
    done = subprocess.run(tierline_argv("replay", *args), env={**subprocess.os.environ, **env}, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_new_consumer_group_submits_nothing_that_succeeded_and_a_named_reprocess_runs_again(
        workers: Workers, emulator_port: int) -> None:
    env = workers.env()
    first = workers.start(env)
    items = make_items(60, "replay", flaky=2, errored=2)
    ids = {item["custom_id"] for item in items}
    failed = {item["custom_id"] for item in items[2:4]}  # errored: they fail for good, every time
    publish(env, items)
    asyncio.run(follow(Settings.from_env(env), lambda p: ids == p.ended()))
    stop(first)
    before = submissions(emulator_port)

    def run_again(times: int) -> None:
        """Wait for the failed items' next failure; then only they have been submitted once more."""
        nonlocal before
        asyncio.run(follow(Settings.from_env(env), lambda p: all(len(p.failures[cid]) >= times for cid in failed)))
        now = submissions(emulator_port)
        assert {cid: now[cid] - before[cid] for cid in ids} == {cid: int(cid in failed) for cid in ids}
        before = now

    # An operator re-consumes the topic from the beginning under a new consumer group: what succeeded is
    # skipped, what failed runs again.
    regrouped = {**env, "TIERLINE_APP_ID": env["TIERLINE_APP_ID"] + "-again"}
    workers.start(regrouped)
    asyncio.run(committed_to_end(Settings.from_env(regrouped)))
    run_again(2)

    # A replay publishes again what failed and leaves out what succeeded.
    printed = replay(regrouped)
    assert "published 2 item(s) again" in printed and "left out 58 that already succeeded" in printed
    asyncio.run(committed_to_end(Settings.from_env(regrouped)))
    run_again(3)

    # A deliberate reprocess of two items, named: they run again, attempts counted from 1.
    chosen = sorted(ids - failed)[:2]
    args = ("--reprocess", "rerun-1", *[f"--custom-id={cid}" for cid in chosen])
    assert "published 2 item(s) again" in replay(regrouped, *args)
    progress = asyncio.run(follow(
        Settings.from_env(env), lambda p: all(len(p.results[cid]) >= 2 for cid in chosen)))
    for cid in chosen:
        first_result, rerun = progress.results[cid]
        assert first_result["reprocess"] is None and rerun["reprocess"] == "rerun-1"
        assert rerun["attempt"] == 1
    after = submissions(emulator_port)
    assert {cid: after[cid] - before[cid] for cid in ids} == {cid: int(cid in chosen) for cid in ids}

    # The same re-run again is recognised: nothing more is published, nor submitted (each of the two is
    # on the topic twice now: as first published, and as the re-run published it).
    printed = replay(regrouped, *args)
    assert "published 0 item(s) again" in printed and "left out 4 that already succeeded under that name" in printed
    asyncio.run(committed_to_end(Settings.from_env(regrouped)))
    assert submissions(emulator_port) == after


def test_a_copy_forwarded_to_its_home_is_not_published_again_beside_its_original() -> None:
    def record(partition: int, offset: int, value: bytes, headers: tuple = ()) -> ConsumerRecord:
        return ConsumerRecord(topic="requests", partition=partition, offset=offset, timestamp=1_700_000_000_000,
                              timestamp_type=0, key=None, value=value, checksum=None, serialized_key_size=0,
                              serialized_value_size=len(value), headers=headers)

    original = record(0, 5, b'{"custom_id": "c-0", "provider": "anthropic"}')  # c-0's home is partition 2
    copy = record(2, 0, original.value, forward(original, "c-0", 2).headers)
    ledger = Ledger(KafkaConnection("unused:9092"), "ledger")
    counts = Replayed()
    sent = list(_again([original, copy], "requests", None, frozenset(), ledger, counts, {0: (0, 9), 2: (0, 1)}))
    assert [m.value for m in sent] == [original.value] and counts.copies == 1
    # The original is not replayed (gone with retention, or before --since): its copy goes instead.
    sent = list(_again([copy], "requests", None, frozenset(), ledger, Replayed(), {0: (6, 9), 2: (0, 1)}))
    assert [m.value for m in sent] == [original.value]
