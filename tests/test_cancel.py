"""tierline cancel: the batch stops at its provider; its unfinished items are retried or failed as asked."""

from __future__ import annotations

import asyncio
import os
import subprocess
from typing import Iterator

import pytest

from streams.local.stack import tierline_argv
from streams.settings import Settings
from streams.local.workload import make_items
from tests.support import Workers, follow, log_events, publish, slow_emulator_workers, wait_for_log


@pytest.fixture(scope="module")
def slow_workers(broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    """Batches take 20 s: time enough to cancel them."""
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, batch_seconds=20) as pool:
        yield pool


def cancel(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(tierline_argv("cancel", *args), env={**os.environ, **env}, capture_output=True, text=True)


def test_cancelled_batches_retry_or_fail_their_unfinished_items(slow_workers: Workers) -> None:
    env = slow_workers.env()
    worker = slow_workers.start(env)
    anthropic, openai = make_items(10, "cancel-a", providers=("anthropic",)), make_items(10, "cancel-o",
                                                                                      providers=("openai",))
    bedrock = [i for i in make_items(12, "cancel-b", providers=("bedrock",)) if "invocation" not in i]
    publish(env, anthropic + openai + bedrock)
    # One Anthropic batch; two OpenAI batches, one per model; one Bedrock job.
    submitted = [(line["provider"], line["batch_id"]) for line in wait_for_log(worker, "batch_submitted", count=4)]

    [anthropic_batch] = [batch_id for provider, batch_id in submitted if provider == "anthropic"]
    [bedrock_job] = [batch_id for provider, batch_id in submitted if provider == "bedrock"]
    for batch_id in (anthropic_batch, bedrock_job):
        failing = cancel(env, batch_id, "--fail")
        assert failing.returncode == 0, failing.stderr
        assert "failed for good" in failing.stdout
    for batch_id in [batch_id for provider, batch_id in submitted if provider == "openai"]:
        retrying = cancel(env, batch_id)
        assert retrying.returncode == 0, retrying.stderr

    ids = {item["custom_id"] for item in anthropic + openai + bedrock}
    progress = asyncio.run(follow(Settings.from_env(env), lambda p: ids <= p.ended(), timeout=120))
    # Items that ran before the cancel keep their result; the others are failed or retried as asked.
    cancelled = 0
    for item in anthropic:
        failures = progress.failures[item["custom_id"]]
        if failures:
            [failure] = failures
            assert failure["final"] and failure["error"]["type"] == "canceled"
            assert not progress.results[item["custom_id"]]
            cancelled += 1
    assert cancelled
    stopped = 0  # a stopped Bedrock job leaves the records it never ran out of its output
    for item in bedrock:
        if failures := progress.failures[item["custom_id"]]:
            [failure] = failures
            assert failure["final"] and failure["error"]["type"] == "batch_cancelled"
            stopped += 1
    assert stopped
    retried = 0
    for item in openai:
        [result] = progress.results[item["custom_id"]]
        failures = progress.failures[item["custom_id"]]
        if failures:
            [failure] = failures
            assert not failure["final"] and failure["error"]["type"] == "batch_cancelled"
            assert result["attempt"] == 2
            retried += 1
        else:
            assert result["attempt"] == 1
    assert retried
    assert len(log_events(worker, "batch_submitted")) > 4  # the retries went in new batches

    again = cancel(env, anthropic_batch)
    assert again.returncode == 2 and "already ended" in again.stderr
    unknown = cancel(env, "msgbatch_nope")
    assert unknown.returncode == 2 and "no batch" in unknown.stderr
