"""tierline tail: a public topic's events, readably, filtered by custom_id."""

from __future__ import annotations

import asyncio
import os
import subprocess


from streams.local.stack import tierline_argv
from streams.cli.tail import describe
from streams.local.workload import make_items
from tests.support import follow, publish_items


def test_each_topic_gets_a_line_with_what_matters() -> None:
    result = {"custom_id": "a-1", "provider": "anthropic", "batch_id": "msgbatch_1", "attempt": 1,
              "usage": {"input_tokens": 12, "output_tokens": 30},
              "response": {"content": [{"type": "text", "text": "Tide pools hold small worlds."}]}}
    assert describe("results", result) == ("a-1  anthropic batch=msgbatch_1 attempt=1 tokens=12+30  "
                                           "'Tide pools hold small worlds.'")
    converse = {"custom_id": "b-3", "provider": "bedrock", "batch_id": "arn:aws:bedrock:…/j1", "attempt": 1,
                "usage": {"inputTokens": 9, "outputTokens": 4},
                "response": {"output": {"message": {"role": "assistant", "content": [{"text": "Low tide, 6 am."}]}}}}
    assert describe("results", converse) == ("b-3  bedrock batch=arn:aws:bedrock:…/j1 attempt=1 tokens=9+4  "
                                             "'Low tide, 6 am.'")
    failure = {"custom_id": "o-2", "provider": "openai", "attempt": 2, "final": True,
               "error": {"type": "invalid_request_error", "message": "bad"}}
    assert describe("failures", failure) == "o-2  openai attempt=2 final  invalid_request_error: bad"
    assert describe("deadletter", {"reason": "invalid_json", "message": "not JSON", "offset": 7}) \
        == "invalid_json  not JSON  (offset 7)"


def test_tail_prints_one_items_events_from_the_beginning(start_worker) -> None:  # type: ignore[no-untyped-def]
    settings = start_worker()
    items = make_items(6, "tail")
    publish_items(settings, items)
    ids = {item["custom_id"] for item in items}
    asyncio.run(follow(settings, lambda p: ids <= set(p.results)))
    env = {**os.environ, "TIERLINE_BROKER": settings.broker, "TIERLINE_TOPIC_PREFIX": settings.topic_prefix}
    argv = tierline_argv("tail", "results", "--from-beginning", "--custom-id", "tail-000005", "--idle", "2")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert "tail-000005  bedrock batch=arn:aws:bedrock:" in line and "attempt=1" in line
