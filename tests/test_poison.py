"""Hostile input on every entry point, and a provider refusing batches: nothing stops the pipeline.

Poison messages between good items on the three topics tierline reads, malformed requests
to the realtime endpoint, a message that crashes workers again and again, batches refused
for a few of their items, an account refusing creates, a retry waiting across a restart.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import time
from collections import Counter

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas import AsyncItem, RetryItem
from streams.state.crashes import EXIT_CRASHED
from streams.local.stack import stop
from streams.settings import Settings
from streams.local.workload import make_items
from tests.support import (
    Workers,
    account,
    follow,
    get,
    log_events,
    nested,
    publish_items,
    slow_emulator_workers,
    submissions,
    wait_for_log,
    with_deep,
)

pytestmark = pytest.mark.integration

ANTHROPIC = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


async def produce(settings: Settings, topic: str, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(settings.topics.named(topic), value, key=key, partition=0)
    finally:
        await producer.stop()


def request(custom_id: str, **fields: object) -> dict:
    return {"custom_id": custom_id, "provider": "anthropic", "params": ANTHROPIC, **fields}


def poison_requests() -> dict[bytes | None, str]:
    """Value → the dead-letter reason it must get, on tierline.requests."""
    return {
        with_deep(request("p-meta"), "metadata", 300): "too_deep",
        with_deep(request("p-params"), "params", 300): "too_deep",
        orjson.dumps(request("p-str", params={**ANTHROPIC, "max_tokens": "20"})): "invalid_params",
        orjson.dumps(request("p-nomsg", params={"model": "claude-haiku-4-5", "max_tokens": 20})): "invalid_params",
        orjson.dumps(request("p-huge", params={**ANTHROPIC, "max_tokens": "HUGE"})).replace(
            b'"HUGE"', b"1" + b"0" * 30): "invalid_params",  # read as a float
        orjson.dumps(request("p-url", tier="async", callback_url="http://[::1")): "invalid_routing",
        b"\xff\xfe not json": "invalid_json",
        None: "invalid_json",
    }


def retry_event(custom_id: str, **fields: object) -> dict:
    return {"custom_id": custom_id, "provider": "anthropic", "params": ANTHROPIC, "endpoint": None, "metadata": {},
            "attempt": 2, "not_before": 0, "source_partition": 0, **fields}


def poison_retries() -> list[bytes | None]:
    return [b"not json", None, orjson.dumps(retry_event("r-params", params="text")),
            orjson.dumps(retry_event("r-nb", not_before=None)), orjson.dumps(retry_event("r-nbs", not_before="soon")),
            orjson.dumps(retry_event(7)), orjson.dumps(retry_event("r-prov", provider="mystery")),
            orjson.dumps(retry_event("r-part", source_partition=99)), orjson.dumps(retry_event("r-x", extra=1)),
            with_deep(retry_event("r-deep"), "metadata", 300)]


def async_item(custom_id: str, **fields: object) -> dict:
    item = AsyncItem(custom_id=custom_id, provider="anthropic", params=ANTHROPIC, endpoint=None, metadata={},
                     reprocess=None, tier="async", route=["test"], arrived_at=1_790_000_000.0, source_partition=0)
    return {**{name: getattr(item, name) for name in AsyncItem.__slots__}, **fields}


def poison_async() -> list[bytes | None]:
    return [b"not json", None, orjson.dumps(async_item("a-params", params="text")),
            orjson.dumps(async_item(7)), orjson.dumps(async_item("a-prov", provider="mystery")),
            orjson.dumps(async_item("a-part", source_partition=99)), orjson.dumps(async_item("a-x", extra=1)),
            orjson.dumps(async_item("a-tier", tier="batch")),
            orjson.dumps(async_item("a-url", callback_url="http://[::1")),
            orjson.dumps(async_item("a-bedrock", provider="bedrock")),  # no model
            orjson.dumps(async_item("a-invoke", provider="bedrock", model="m", invocation="stream"))]


def post(port: int, path: str, body: bytes, headers: dict[str, bytes | str]) -> tuple[int, dict]:
    """A raw HTTP request: headers may hold bytes that are not UTF-8."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest("POST", path)
    for name, value in {"content-type": "application/json", "content-length": str(len(body)),
                        "x-api-key": "k", "authorization": "Bearer k", **headers}.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    answer = connection.getresponse()
    return answer.status, json.loads(answer.read() or b"null")


@pytest.fixture(scope="module")
def poisoned(workers: Workers):  # type: ignore[no-untyped-def]
    env = workers.env()
    proc = workers.start(env)
    settings = Settings.from_env(env)
    good = make_items(30, "good")
    good_async = [async_item(f"good-async-{n}") for n in range(3)]
    requests = poison_requests()
    lines = [orjson.dumps(item) for item in good]
    mixed = [(b"poison", value) for value in requests] + [(b"k", line) for line in lines]
    mixed.sort(key=lambda pair: hash(pair[1]))  # poison between the good items
    asyncio.run(produce(settings, "requests", mixed))
    asyncio.run(produce(settings, "retry", [(b"k", value) for value in poison_retries()]))
    asyncio.run(produce(settings, "async", [(b"k", value) for value in poison_async()]
                        + [(item["custom_id"].encode(), orjson.dumps(item)) for item in good_async]))
    port = proc.web_port  # type: ignore[attr-defined]
    realtime = [
        ("/realtime/anthropic/v1/messages", orjson.dumps(ANTHROPIC), {"tierline-metadata": nested(300).decode()}),
        ("/realtime/anthropic/v1/messages", orjson.dumps(ANTHROPIC), {"tierline-custom-id": b"\xff\xfe-id"}),
        ("/realtime/anthropic/v1/messages", b"[1, 2]", {}),
        ("/realtime/openai/v1/chat/completions", b"not json", {}),
        ("/realtime/openai/v1/chat/completions", orjson.dumps({"model": "gpt-4o-mini", "stream": True,
                                                               "stream_options": "yes", "messages": []}), {}),
        ("/realtime/openai/v1/chat/completions", orjson.dumps({"model": "gpt-4o-mini", "messages": []}),
         {"tierline-metadata": "[1]"}),
    ]
    answers = [post(port, path, body, headers) for path, body, headers in realtime]
    ids = {item["custom_id"] for item in good} | {item["custom_id"] for item in good_async}
    expected_dead = len(requests) + len(poison_retries()) + len(poison_async())
    progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results) and len(p.dead) >= expected_dead,
                                  timeout=180))
    return proc, settings, requests, answers, progress, ids


def test_every_good_item_gets_its_result_and_every_poison_message_its_dead_letter(poisoned) -> None:  # type: ignore[no-untyped-def]
    _proc, _settings, requests, _answers, progress, ids = poisoned
    assert ids <= set(progress.results)
    assert all(len(progress.results[cid]) == 1 for cid in ids)
    by_value = {(letter["topic"].rsplit(".", 1)[-1], base64.b64decode(letter["value_b64"])): letter
                for letter in progress.dead}
    for value, reason in requests.items():
        assert by_value[("requests", value or b"")]["reason"] == reason
    for value in poison_retries():
        assert by_value[("retry", value or b"")]["reason"] == "invalid_retry"
    for value in poison_async():
        assert by_value[("async", value or b"")]["reason"] == "invalid_async"
    assert len(progress.dead) == len(requests) + len(poison_retries()) + len(poison_async())


def test_a_dead_letter_names_the_field_at_fault(poisoned) -> None:  # type: ignore[no-untyped-def]
    messages = {letter["message"] for letter in poisoned[4].dead}
    for field in ("max_tokens", "messages", "not_before", "source_partition", "'extra'", "callback_url"):
        assert any(field in message for message in messages), field


def test_the_realtime_endpoint_answers_a_malformed_request_400_in_the_providers_shape(poisoned) -> None:  # type: ignore[no-untyped-def]
    answers = poisoned[3]
    assert [status for status, _ in answers] == [400] * len(answers)
    for _status, body in answers[:3]:
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    for _status, body in answers[3:]:
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"]


def test_the_worker_stayed_up_and_ready_throughout(poisoned) -> None:  # type: ignore[no-untyped-def]
    proc = poisoned[0]
    assert proc.poll() is None
    status, _ = get(proc.web_port, "/health")
    assert status == 200
    assert log_events(proc, "agent_crashed") == [] and log_events(proc, "item_unprocessable") == []


def test_a_message_that_crashes_workers_is_set_aside_after_three_crashes(workers: Workers) -> None:
    """A bug past the per-item boundary (simulated by TIERLINE_CRASH_ON): exit 70 each time, then a dead letter."""
    env = workers.env(TIERLINE_CRASH_ON="#crash-here", TIERLINE_SESSION_TIMEOUT_S="6")
    settings = Settings.from_env(env)
    before, after = make_items(6, "before"), make_items(6, "after")
    crasher = request("crasher", params={**ANTHROPIC, "messages": [{"role": "user", "content": "#crash-here"}]})
    publish_items(settings, before + [crasher] + after)
    exits = []
    for _ in range(3):
        proc = workers.start(env)
        exits.append(proc.wait(120))
    assert exits == [EXIT_CRASHED] * 3
    assert len(wait_for_log(proc, "agent_crashed")) == 1
    proc = workers.start(env)
    ids = {item["custom_id"] for item in before + after}
    progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results) and p.dead, timeout=180))
    assert [letter["reason"] for letter in progress.dead] == ["crashed_worker"]
    assert ids <= set(progress.results) and proc.poll() is None


def test_a_batch_refused_for_a_few_items_ends_with_results_for_all_the_others(workers: Workers,
                                                                               emulator_port: int) -> None:
    env = workers.env(TIERLINE_BATCH_MAX_ITEMS="40")
    workers.start(env)
    settings = Settings.from_env(env)
    good = make_items(90, "mates")
    bad = [
        # Anthropic's create names the request: "requests.N.params.max_token: Extra inputs are not permitted".
        request("bad-named", params={**ANTHROPIC, "max_token": 5}),
        # ...or names none: the batch is split until the request stands alone.
        request("bad-unnamed", params={**ANTHROPIC, "messages": [{"role": "user", "content":
                                                                   "#emulate:refuse-unnamed"}]}),
        # OpenAI fails the batch at validation, naming the line.
        {"custom_id": "bad-line", "provider": "openai",
         "params": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "#emulate:invalid-line"}]}},
        # Bedrock and OpenAI refuse a request as it runs: only that record fails.
        {**make_items(3, "bad-record", errored=3)[2]},
        {**make_items(3, "bad-request", errored=3)[1]},
    ]
    publish_items(settings, good + bad)
    ids = {item["custom_id"] for item in good + bad}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=240))
    assert {item["custom_id"] for item in good} <= set(progress.results)
    assert progress.final_failures() == {item["custom_id"] for item in bad}
    assert all(len(progress.failures[item["custom_id"]]) == 1 for item in bad)
    named = progress.failures["bad-named"][0]["error"]
    assert "max_token" in named["message"] and named["type"] == "invalid_request"
    assert "invalid-line" in progress.failures["bad-line"][0]["error"]["message"]
    counts = submissions(emulator_port)
    assert max(counts[item["custom_id"]] for item in good) <= 8  # resubmitted a few times, not once per split


def test_a_create_refused_for_the_account_fails_nothing_and_goes_through_once_fixed(
        broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 1.0) as pool:
        emulator = pool._emulator_port
        account(emulator, "anthropic", "no_credit")
        env = pool.env()
        proc = pool.start(env)
        settings = Settings.from_env(env)
        items = make_items(6, "unpaid", providers=("anthropic",))
        publish_items(settings, items)
        [alerted] = wait_for_log(proc, "alert", timeout=60)
        assert alerted["kind"] == "provider_refused" and "credit balance" in alerted["message"]
        time.sleep(6)  # tried again at least once, alerted once
        account(emulator, "anthropic", None)
        ids = {item["custom_id"] for item in items}
        progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=120))
        assert not progress.failures and len(log_events(proc, "alert")) == 1


def test_a_retry_waiting_when_the_worker_restarts_is_submitted_once(workers: Workers, emulator_port: int) -> None:
    env = workers.env(TIERLINE_RETRY_BASE_DELAY_S="8")
    proc = workers.start(env)
    settings = Settings.from_env(env)
    [item] = make_items(1, "waiting", flaky=1, providers=("openai",))
    publish_items(settings, [item])
    cid = item["custom_id"]
    asyncio.run(follow(settings, lambda p: cid in p.retried(), timeout=120))
    stop(proc)  # SIGTERM, as a deployment's restart does
    workers.start(env)
    progress = asyncio.run(follow(settings, lambda p: cid in p.results, timeout=120))
    assert len(progress.results[cid]) == 1 and len(progress.failures[cid]) == 1
    assert submissions(emulator_port)[cid] == 2
    assert Counter(e["final"] for e in progress.failures[cid]) == {False: 1}


def test_a_retry_waiting_an_hour_is_parked_and_a_restart_runs_nothing_behind_it_again(
        workers: Workers, emulator_port: int) -> None:
    """A retry held for an hour pinned its partition's commit: after a restart the worker read everything behind
    it again, and called the provider a second time for an item that had failed for good."""
    env = workers.env(TIERLINE_RETRY_PARK_S="2")
    proc = workers.start(env)
    settings = Settings.from_env(env)
    wait_for_log(proc, "partitions_assigned", timeout=60)
    behind, held = make_items(2, "parked", errored=1, providers=("anthropic",))

    def retry(item: dict, not_before: float) -> tuple[bytes, bytes]:
        fields = {key: item.get(key) for key in ("custom_id", "provider", "params", "endpoint", "metadata")}
        return item["custom_id"].encode(), orjson.dumps(RetryItem(**fields, attempt=2, not_before=not_before,
                                                                  source_partition=0))

    asyncio.run(produce(settings, "retry", [retry(held, time.time() + 3600), retry(behind, 0)]))
    asyncio.run(follow(settings, lambda p: behind["custom_id"] in p.final_failures(), timeout=120))
    [parked] = wait_for_log(proc, "retries_parked", timeout=60)
    assert parked["items"] == 1
    assert asyncio.run(committed(settings, "retry", 0)) >= 2  # past the held retry's record and the one behind it

    stop(proc)  # SIGTERM, as a deployment's restart does
    again = workers.start(env)
    wait_for_log(again, "partitions_assigned", timeout=60)
    time.sleep(3)  # what it reads again, it would place at once
    progress = asyncio.run(follow(settings, lambda p: True))
    assert [e["final"] for e in progress.failures[behind["custom_id"]]] == [True]  # one ending, not a second
    assert submissions(emulator_port)[behind["custom_id"]] == 1 and held["custom_id"] not in submissions(
        emulator_port)  # still waiting: its copy is the one read now


async def committed(settings: Settings, topic: str, partition: int) -> int:
    """The window agent's committed offset of ``topic``'s ``partition`` (-1: none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=f"{settings.app_id}-window",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        for _ in range(120):  # committed a moment after the park
            done = await consumer.committed(TopicPartition(settings.topics.named(topic), partition))
            if done is not None and done >= 2:
                return int(done)
            await asyncio.sleep(0.25)
        return -1 if done is None else int(done)
    finally:
        await consumer.stop()
