"""Replay: re-consuming the requests topic submits nothing that succeeded; a named reprocess does."""

from __future__ import annotations

import asyncio
import subprocess


from streams.local.stack import stop, tierline_argv
from streams.settings import Settings
from streams.local.workload import make_items
from tests.support import Workers, committed_to_end, follow, publish, submissions


def test_a_new_consumer_group_submits_nothing_that_succeeded_and_a_named_reprocess_runs_again(
        workers: Workers, emulator_port: int) -> None:
    env = workers.env()
    first = workers.start(env)
    items = make_items(60, "replay", flaky=2)
    ids = {item["custom_id"] for item in items}
    publish(env, items)
    asyncio.run(follow(Settings.from_env(env), lambda p: ids <= set(p.results)))
    stop(first)
    before = submissions(emulator_port)

    # An operator re-consumes the topic from the beginning under a new consumer group.
    regrouped = {**env, "TIERLINE_APP_ID": env["TIERLINE_APP_ID"] + "-again"}
    workers.start(regrouped)
    asyncio.run(committed_to_end(Settings.from_env(regrouped)))
    assert submissions(emulator_port) == before

    # A deliberate reprocess of two items, named: they run again, attempts counted from 1.
    chosen = sorted(ids)[:2]
    argv = tierline_argv("replay", "--reprocess", "rerun-1", *[f"--custom-id={cid}" for cid in chosen])
    done = subprocess.run(argv, env={**subprocess.os.environ, **regrouped}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "published 2 item(s) again" in done.stdout
    progress = asyncio.run(follow(
        Settings.from_env(env), lambda p: all(len(p.results[cid]) >= 2 for cid in chosen)))
    for cid in chosen:
        first_result, rerun = progress.results[cid]
        assert first_result["reprocess"] is None and rerun["reprocess"] == "rerun-1"
        assert rerun["attempt"] == 1
    after = submissions(emulator_port)
    assert {cid: after[cid] - before[cid] for cid in ids} == {cid: int(cid in chosen) for cid in ids}

    # The same re-run again is recognised: nothing more is submitted.
    subprocess.run(argv, env={**subprocess.os.environ, **regrouped}, check=True, capture_output=True)
    asyncio.run(committed_to_end(Settings.from_env(regrouped)))
    assert submissions(emulator_port) == after
