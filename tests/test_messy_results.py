"""Result downloads as they really go: broken off half way, error files for clean batches, odd lines.

The emulator's ``--messy-results`` breaks the first download of every batch's results half way
through, says ``error_file_id: ""`` of OpenAI batches without errors, and writes server errors
with ``status_code: 0``. An OpenAI batch whose every request failed ends ``completed`` with no
output file at all, as the live API ends it. Every item still ends with exactly one result or one
final failure, and no event goes out twice for a download done again.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest

from streams.local.workload import make_items
from streams.settings import Settings
from tests.support import Workers, follow, log_events, publish_items, slow_emulator_workers


@pytest.fixture(scope="module")
def messy(broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 1, "--messy-results") as pool:
        yield pool


def all_errored(n: int) -> list[dict[str, Any]]:
    """OpenAI items of a model of their own, every one refused as it runs: a batch with no output file."""
    return [{"custom_id": f"bad-{i}", "provider": "openai", "endpoint": "/v1/chat/completions",
             "params": {"model": "gpt-4o", "messages": [{"role": "user", "content": f"#emulate:errored {i}"}]}}
            for i in range(n)]


@pytest.fixture(scope="module")
def run(messy: Workers):  # type: ignore[no-untyped-def]
    env = messy.env(TIERLINE_BATCH_MAX_ITEMS="25", TIERLINE_POLL_MAX_S="0.5")
    proc = messy.start(env)
    settings = Settings.from_env(env)
    good = make_items(100, "messy", flaky=6, providers=("anthropic", "openai"))
    bad = all_errored(5)
    publish_items(settings, good + bad)
    ids = {item["custom_id"] for item in good + bad}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=240))
    return good, bad, progress, proc


def test_every_item_ends_once_though_every_first_download_broke_off(run) -> None:  # type: ignore[no-untyped-def]
    good, _bad, progress, proc = run
    assert set(progress.results) == {item["custom_id"] for item in good}
    assert all(len(events) == 1 for events in progress.results.values())
    broken = log_events(proc, "results_download_failed")
    assert broken and all("broke off" in event["error"] for event in broken)


def test_a_server_error_with_status_code_0_is_retried_and_succeeds(run) -> None:  # type: ignore[no-untyped-def]
    good, _bad, progress, _proc = run
    for item in good[:6]:
        [failure] = progress.failures[item["custom_id"]]
        assert not failure["final"] and failure["retryable"]
        assert progress.results[item["custom_id"]][0]["attempt"] == 2


def test_a_batch_whose_every_request_failed_gives_each_its_final_failure(run) -> None:  # type: ignore[no-untyped-def]
    _good, bad, progress, _proc = run
    for item in bad:
        [failure] = progress.failures[item["custom_id"]]
        assert failure["final"] and failure["error"]["type"] == "invalid_request_error"
