"""A provider answering 404 for a batch it just created: polled on as a batch that exists, never created twice.

The real APIs answer 404 to retrieve (and Anthropic's to results) for some seconds after a
successful create (anthropic-sdk-python#1432). tierline keeps polling through it for
``TIERLINE_NOT_FOUND_GRACE_S``; only a batch still answered 404 past that is taken to be gone,
and its items are retried.
"""

from __future__ import annotations

import asyncio
from typing import Iterator

import pytest

from streams.local.workload import make_items
from streams.settings import Settings
from tests.support import Workers, follow, log_events, publish_items, slow_emulator_workers, submissions


@pytest.fixture(scope="module")
def forgetful(broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    """A provider that answers 404 for 4 s after each create; its batches take 1 s."""
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 1, "--transient-404-s", "4") as pool:
        yield pool


@pytest.fixture(scope="module")
def losing(broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    """A provider that answers 404 for every batch it creates, for ever."""
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 1, "--transient-404-s", "1e9") as pool:
        yield pool


def test_a_404_right_after_create_is_polled_through_and_nothing_is_submitted_twice(forgetful: Workers) -> None:
    env = forgetful.env(TIERLINE_BATCH_MAX_ITEMS="10")
    proc = forgetful.start(env)
    settings = Settings.from_env(env)
    items = make_items(40, "nf", providers=("anthropic", "openai"))
    publish_items(settings, items)
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=180))
    assert set(progress.results) == ids and not progress.failures
    assert all(events[0]["attempt"] == 1 for events in progress.results.values())
    assert set(submissions(forgetful._emulator_port).values()) == {1}  # type: ignore[attr-defined]
    providers = {e["batch_key"].split("-")[1] for e in log_events(proc, "batch_not_found_yet")}
    assert providers == {"anthropic", "openai"}


def test_a_batch_answered_404_past_the_grace_is_taken_to_be_gone_and_its_items_retried(losing: Workers) -> None:
    env = losing.env(TIERLINE_NOT_FOUND_GRACE_S="2", TIERLINE_MAX_ATTEMPTS="2")
    proc = losing.start(env)
    settings = Settings.from_env(env)
    items = make_items(4, "gone", providers=("anthropic",))
    publish_items(settings, items)
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=180))
    for cid in ids:
        first, second = progress.failures[cid]
        assert (first["error"]["type"], first["final"], second["attempt"], second["final"]) == \
            ("batch_not_found", False, 2, True)
    assert {a["kind"] for a in log_events(proc, "alert")} == {"batch_not_found"}
