"""A worker whose ledger is mostly on disk (``TIERLINE_LEDGER_IN_MEMORY``) still runs nothing twice."""

from __future__ import annotations

import asyncio

import pytest

from streams.local.workload import make_items
from streams.settings import Settings
from tests.support import (Workers, committed_to_end, follow, publish_items, scraped, submissions, total,
                           wait_for_log)

pytestmark = pytest.mark.integration


def test_items_that_succeeded_are_skipped_whether_their_success_is_in_memory_or_on_disk(workers: Workers) -> None:
    env = workers.env(TIERLINE_LEDGER_IN_MEMORY="5")
    first = workers.start(env)
    settings = Settings.from_env({**env, "TIERLINE_WEB_PORT": str(first.web_port)})  # type: ignore[attr-defined]
    items = make_items(40, "on-disk", providers=("anthropic", "openai"))
    wanted = {item["custom_id"] for item in items}
    publish_items(settings, items)
    progress = asyncio.run(follow(settings, lambda p: wanted <= p.ended()))
    assert set(progress.results) == wanted
    submitted = submissions(workers.emulator_port)
    gauges = scraped(first.web_port)  # type: ignore[attr-defined]
    assert total(gauges, "tierline_ledger_entries", where="memory") <= 5
    assert total(gauges, "tierline_ledger_entries", where="disk") >= len(items) - 5

    publish_items(settings, items)  # again, to the worker that recorded them: most of them on disk by now
    asyncio.run(committed_to_end(settings))
    # A second deployment's group reads the same topics from the start; its ledger, read from the topic
    # at start, goes to disk past five entries.
    again = {**env, "TIERLINE_APP_ID": f"{env['TIERLINE_APP_ID']}-again",
             "TIERLINE_DATA_DIR": f"{env['TIERLINE_DATA_DIR']}-again"}
    second = workers.start(again)
    [loaded] = wait_for_log(second, "ledger_loaded")
    assert loaded["in_memory"] <= 5 and loaded["in_memory"] + loaded["on_disk"] >= len(items)
    asyncio.run(committed_to_end(Settings.from_env(again)))
    assert submissions(workers.emulator_port) == submitted
