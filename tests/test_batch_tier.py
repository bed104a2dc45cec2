"""The batch tier end to end: embedded broker, emulator, a real worker, the official SDKs."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter

import orjson
import pytest
from confluent_kafka import Producer

from streams.cli.produce import key_of, publish_lines
from streams.settings import Settings
from core.cost import Billed, PriceTable, billed_tokens
from streams.local.workload import LANES, bad_lines, cached_items, make_items
from streams.kafka.homes import first_read, home_of
from tests.support import committed_to_end, follow, publish_items, submissions, topic_records, validate_events

pytestmark = pytest.mark.integration

N = 2_000
FLAKY, ERRORED = 8, 5
#: What each provider calls a request it refuses, as an item's error type.
INVALID_REQUEST = {"anthropic": "invalid_request_error", "openai": "invalid_request_error",
                   "bedrock": "ValidationException", "gemini": "INVALID_ARGUMENT", "groq": "invalid_request_error"}


def produce_with_confluent(settings: Settings, lines: list[bytes]) -> None:
    """Publish as an outside producer would, with another Kafka client than the service's."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})
    for line in lines:
        producer.produce(settings.topics.requests, value=line, key=key_of(line))
        producer.poll(0)
    assert producer.flush(30) == 0


@pytest.fixture(scope="module")
def pipeline(start_worker, emulator_port):  # type: ignore[no-untyped-def]
    settings = start_worker(TIERLINE_BATCH_MAX_ITEMS="400")
    items = make_items(N, "e2e", flaky=FLAKY, errored=ERRORED, providers=LANES)
    bad = bad_lines("e2e-bad")
    lines = [orjson.dumps(item) for item in items] + list(bad.values())
    produce_with_confluent(settings, lines)
    good = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(settings, lambda p: good <= p.ended() and len(p.dead) >= len(bad)))
    return settings, items, bad, lines, progress


def test_every_good_item_ends_with_exactly_one_result(pipeline) -> None:  # type: ignore[no-untyped-def]
    _settings, items, _bad, _lines, progress = pipeline
    errored = {item["custom_id"] for item in items[FLAKY:FLAKY + ERRORED]}
    succeeded = {item["custom_id"] for item in items} - errored
    assert set(progress.results) == succeeded
    assert all(len(events) == 1 for events in progress.results.values())
    by_id = {item["custom_id"]: item for item in items}
    for cid, [event] in progress.results.items():
        assert event["metadata"] == by_id[cid]["metadata"]
        assert event["provider"] == by_id[cid]["provider"]
        assert event["usage"] and event["response"]


def test_every_event_fits_its_topics_json_schema(pipeline) -> None:  # type: ignore[no-untyped-def]
    _settings, _items, _bad, _lines, progress = pipeline
    validate_events("results", [e for events in progress.results.values() for e in events])
    validate_events("failures", [e for events in progress.failures.values() for e in events])
    validate_events("deadletter", progress.dead)


def test_flaky_items_succeed_on_their_second_attempt(pipeline) -> None:  # type: ignore[no-untyped-def]
    _settings, items, _bad, _lines, progress = pipeline
    for item in items[:FLAKY]:
        [failure] = progress.failures[item["custom_id"]]
        assert failure["retryable"] and not failure["final"] and failure["attempt"] == 1
        [result] = progress.results[item["custom_id"]]
        assert result["attempt"] == 2


def test_errored_items_end_with_one_final_failure(pipeline) -> None:  # type: ignore[no-untyped-def]
    _settings, items, _bad, _lines, progress = pipeline
    for item in items[FLAKY:FLAKY + ERRORED]:
        [failure] = progress.failures[item["custom_id"]]
        assert failure["final"] and not failure["retryable"] and failure["attempt"] == 1
        assert failure["error"]["type"] == INVALID_REQUEST[item["provider"]]
        assert failure["metadata"] == item["metadata"]


def test_items_librdkafka_put_away_from_their_home_were_forwarded_there_once(pipeline) -> None:  # type: ignore[no-untyped-def]
    settings, items, _bad, _lines, _progress = pipeline
    records = asyncio.run(topic_records(settings, settings.topics.requests))
    by_line = {orjson.dumps(item): item["custom_id"] for item in items}
    at_home = Counter(cid for record in records if (cid := by_line.get(record.value)) is not None
                      and record.partition == home_of(cid, settings.partitions))
    assert all(at_home[cid] == 1 for cid in by_line.values())
    copies = [r for r in records if first_read(r) is not None]
    # librdkafka hashes keys with crc32, Kafka's default partitioner with murmur2: they agree for about 1 in 4.
    assert len(copies) > len(items) / 2
    assert {r.value for r in copies} <= {r.value for r in records if first_read(r) is None}  # byte for byte


def test_bad_input_is_dead_lettered_byte_for_byte(pipeline) -> None:  # type: ignore[no-untyped-def]
    _settings, _items, bad, _lines, progress = pipeline
    by_reason = {letter["reason"]: letter for letter in progress.dead}
    assert set(by_reason) == set(bad)
    for reason, line in bad.items():
        assert base64.b64decode(by_reason[reason]["value_b64"]) == line
        assert by_reason[reason]["message"]


def test_each_item_is_submitted_once_unless_its_attempt_failed(pipeline, emulator_port) -> None:  # type: ignore[no-untyped-def]
    _settings, items, _bad, _lines, _progress = pipeline
    counts = submissions(emulator_port)
    for n, item in enumerate(items):
        assert counts[item["custom_id"]] == (2 if n < FLAKY else 1), item["custom_id"]


def test_publishing_the_same_items_again_submits_nothing_new(pipeline, emulator_port) -> None:  # type: ignore[no-untyped-def]
    settings, items, _bad, lines, _progress = pipeline
    before = submissions(emulator_port)
    good = [orjson.dumps(item) for item in items[:FLAKY]] + [orjson.dumps(item) for item in items[FLAKY + ERRORED:]]
    asyncio.run(publish_lines(settings, good))
    asyncio.run(committed_to_end(settings))
    assert submissions(emulator_port) == before


def test_items_the_provider_refuses_fail_each_with_its_reason(start_worker) -> None:  # type: ignore[no-untyped-def]
    settings = start_worker()
    rejected_model = [{"custom_id": f"rej-{i}", "provider": "openai",
                       "params": {"model": "emulate-reject-model", "messages": [{"role": "user", "content": "x"}]}}
                      for i in range(3)]
    no_max_tokens = [{"custom_id": f"rej-a{i}", "provider": "anthropic",
                      "params": {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}]}}
                     for i in range(2)]
    bedrock_rejected = [{"custom_id": f"rej-b{i}", "provider": "bedrock", "model": "emulate-reject-model",
                         "params": {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
                         "invocation": "converse"} for i in range(2)]
    gemini_rejected = [{"custom_id": f"rej-g{i}", "provider": "gemini", "model": "emulate-reject-model",
                        "params": {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}} for i in range(2)]
    items = rejected_model + no_max_tokens + bedrock_rejected + gemini_rejected
    publish_items(settings, items)
    ids = {item["custom_id"] for item in rejected_model + bedrock_rejected + gemini_rejected}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended() and len(p.dead) >= 2, timeout=120))
    assert not progress.results
    # OpenAI names each line it refuses at validation: each of those items fails for its own reason.
    for item in rejected_model:
        [failure] = progress.failures[item["custom_id"]]
        assert failure["final"] and failure["error"]["type"] == "invalid_request"
        assert "model_not_found" in failure["error"]["message"]
    # A body that does not fit the provider's request type never reaches it.
    assert [letter["reason"] for letter in progress.dead] == ["invalid_params"] * 2
    assert all("max_tokens: field required" in letter["message"] for letter in progress.dead)
    # A Bedrock job that fails validation names no record: its items fail with the job's message.
    for item in bedrock_rejected:
        [failure] = progress.failures[item["custom_id"]]
        assert failure["final"] and failure["error"]["type"] == "batch_rejected"
    assert "model identifier" in progress.failures["rej-b0"][0]["error"]["message"]  # the Failed job's message
    # Gemini refuses the create of a job for a model it does not have: its items fail with its words.
    for item in gemini_rejected:
        [failure] = progress.failures[item["custom_id"]]
        assert failure["final"] and failure["error"]["type"] == "batch_rejected"
        assert "models/emulate-reject-model is not found" in failure["error"]["message"]


def test_prompt_cache_reads_are_priced_at_the_cache_rate_in_batch_results(start_worker) -> None:  # type: ignore[no-untyped-def]
    settings = start_worker()
    items = cached_items(20, "cache")
    publish_items(settings, items)
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=120))
    prices = PriceTable.load(settings.prices_path, settings.catalogue.pricing())
    read_somewhere = set()
    for cid in ids:
        [event] = progress.results[cid]
        tokens = billed_tokens(event["usage"])
        if tokens.cache_read:
            read_somewhere.add(event["provider"])
        assert event["cost_usd"] == pytest.approx(prices.batch_usd(event["provider"], event["model"], tokens))
        plain = Billed(tokens.input + tokens.cached, tokens.output)  # every input token at the input rate
        if tokens.cache_read:
            assert event["cost_usd"] < prices.batch_usd(event["provider"], event["model"], plain)
    assert read_somewhere == {"anthropic", "openai"}  # the shared guide came from the cache for both
