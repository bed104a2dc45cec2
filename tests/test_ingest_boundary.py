"""Whatever bytes arrive, the windowing agent ends each message as one dead letter or one accepted item.

The agent runs in-process on fake inputs: records made here, a spool in a temporary
folder, an outbox read back. Hypothesis makes the messages: JSON of every shape
(deep nesting, huge integers, unusual unicode), valid items mutated in every field,
and raw bytes; on the requests topic and on the retry topic.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.window_items import WindowItems
from streams.settings import Settings
from streams.local.workload import make_items
from tests import fakes
from tests.support import dumps, with_deep

SETTINGS = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "p.", "TIERLINE_PARTITIONS": "1",  # no record away from home
                              "TIERLINE_BEDROCK_MIN_RECORDS": "1"})
REQUESTS = TopicPartition(SETTINGS.topics.requests, 0)
RETRY = TopicPartition(SETTINGS.topics.retry, 0)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def good_request() -> dict[str, Any]:
    return make_items(3, "prop")[0]


def good_retry() -> dict[str, Any]:
    item = good_request()
    return {"custom_id": item["custom_id"], "provider": item["provider"], "params": item["params"],
            "endpoint": item.get("endpoint"), "metadata": item.get("metadata", {}), "attempt": 2,
            "not_before": 0, "source_partition": 0, "previous_error": {"type": "x", "message": "y"},
            "reprocess": None, "route": None, "model": item.get("model"), "invocation": item.get("invocation")}


def mutated(base: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """A valid item with one field replaced by anything, dropped, or nested past the limit."""
    fields = st.sampled_from(sorted(base) + ["extra"])
    replaced = st.tuples(fields, json_values).map(lambda change: dumps({**base, change[0]: change[1]}))
    deepened = st.tuples(fields, st.integers(10, 300)).map(lambda change: with_deep(base, *change))
    dropped = st.sampled_from(sorted(base)).map(lambda name: dumps({k: v for k, v in base.items() if k != name}))
    return replaced | deepened | dropped


messages = (
    st.binary(max_size=64)
    | json_values.map(dumps)
    | st.integers(1, 400).map(lambda depth: with_deep(good_request(), "metadata", depth))
    | mutated(good_request())
    | st.just(b"")
)


class Agent:
    """The windowing agent over fake inputs; what it made of each message is in its outboxes."""

    def __init__(self, spool_dir: Path, succeeded: Any = None, set_aside: Any = lambda at: False) -> None:
        shared = fakes.runtime(SETTINGS, spool_dir, set_aside=set_aside)
        if succeeded is not None:
            shared.ledger.succeeded = succeeded
        self.consumer = fakes.FakeConsumer()
        self.agent = WindowItems(shared, hand_over=lambda job: None, consumer=lambda: self.consumer)

    async def start(self) -> Agent:
        await self.agent.on_start()
        await self.consumer.rebalance([REQUESTS, RETRY])
        return self

    async def take(self, tp: TopicPartition, value: bytes | None) -> tuple[list[dict], int]:
        """Feed one message through the agent's error boundary; return the dead letters it made and how
        many items it placed, routed, or skipped as the twin of one already placed (the examples reuse
        custom_ids)."""
        agent, intake = self.agent, self.agent._intake
        before_out, before_letters = len(agent._outbox), len(intake.letters)
        before_placed, before_twins = self.placed(), agent._duplicates
        record = self.consumer.put(tp, value)
        intake.each({tp: [record]}, agent._take)
        agent._release_due(time.time() + 10**9)  # a retry waiting for later counts as placed
        letters = [orjson.loads(m.value) for m in intake.letters[before_letters:]]
        routed = len(agent._outbox) - before_out
        return letters, self.placed() - before_placed + routed + agent._duplicates - before_twins

    def placed(self) -> int:
        return sum(batch.count for batch in self.agent.window.open_batches()) + \
            sum(batch.count for batch in self.agent._closed)


@pytest.fixture
async def agent(tmp_path: Path) -> Agent:
    return await Agent(tmp_path).start()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=messages, on_retry=st.booleans())
async def test_every_message_ends_as_one_dead_letter_or_one_accepted_item(agent: Agent, value: bytes,
                                                                          on_retry: bool) -> None:
    letters, accepted = await agent.take(RETRY if on_retry else REQUESTS, value)
    assert len(letters) + accepted == 1, (letters, accepted)
    for letter in letters:
        assert letter["value_b64"] is not None and letter["reason"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=mutated(good_retry()) | json_values.map(dumps) | st.binary(max_size=32))
async def test_a_retry_event_tierline_did_not_write_is_a_dead_letter_or_a_checked_item(agent: Agent,
                                                                                      value: bytes) -> None:
    letters, accepted = await agent.take(RETRY, value)
    assert len(letters) + accepted == 1
    assert all(letter["reason"] == "invalid_retry" for letter in letters)


async def test_metadata_nested_300_levels_deep_is_a_dead_letter_too_deep(agent: Agent) -> None:
    letters, accepted = await agent.take(REQUESTS, with_deep(good_request(), "metadata", 300))
    assert accepted == 0 and [letter["reason"] for letter in letters] == ["too_deep"]


@pytest.mark.parametrize(("change", "reason", "names"), [
    ({"params": {**good_request()["params"], "max_tokens": "20"}}, "invalid_params", "max_tokens"),
    ({"params": {"model": "claude-haiku-4-5", "max_tokens": 20}}, "invalid_params", "messages"),
    ({"params": {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "bot", "content": "x"}]}},
     "invalid_params", "messages.0.role"),
    ({"callback_url": "http://[::1", "tier": "async"}, "invalid_routing", "callback_url"),
    ({"custom_id": "a\nb"}, "invalid_custom_id", "printable"),
])
async def test_what_used_to_stop_or_sink_the_pipeline_is_a_dead_letter_naming_the_fault(
        agent: Agent, change: dict, reason: str, names: str) -> None:
    item = {**make_items(3, "known")[0], "provider": "anthropic",
            "params": {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}}
    letters, accepted = await agent.take(REQUESTS, orjson.dumps({**item, **change}))
    assert accepted == 0 and [letter["reason"] for letter in letters] == [reason]
    assert names in letters[0]["message"]


@pytest.mark.parametrize(("change", "names"), [
    ({"params": "text"}, "params"), ({"not_before": None}, "not_before"), ({"not_before": "soon"}, "not_before"),
    ({"custom_id": 7}, "custom_id"), ({"provider": "mystery"}, "provider"), ({"source_partition": 99},
                                                                               "source_partition"),
    ({"surprise": 1}, "surprise"), ({"attempt": True}, "attempt"),
])
async def test_a_retry_event_names_the_field_at_fault(agent: Agent, change: dict, names: str) -> None:
    letters, accepted = await agent.take(RETRY, orjson.dumps({**good_retry(), **change}))
    assert accepted == 0 and [letter["reason"] for letter in letters] == ["invalid_retry"]
    assert names in letters[0]["message"]


async def test_a_tombstone_on_the_retry_topic_is_a_dead_letter(agent: Agent) -> None:
    letters, accepted = await agent.take(RETRY, None)
    assert accepted == 0 and [letter["reason"] for letter in letters] == ["invalid_retry"]


async def test_an_oversized_message_is_kept_in_part_and_says_so(agent: Agent) -> None:
    letters, _ = await agent.take(REQUESTS, b"x" * 2_000_000)
    assert letters[0]["value_truncated"] is True and len(letters[0]["value_b64"]) < 1_000_000


async def test_an_item_whose_handling_raises_is_a_dead_letter_and_the_next_one_is_handled(tmp_path: Path) -> None:
    def ledger_bug(key: object) -> bool:
        if key == "boom":
            raise RuntimeError("a bug not yet found")
        return False

    agent = await Agent(tmp_path, succeeded=ledger_bug).start()
    letters, accepted = await agent.take(REQUESTS, orjson.dumps({**good_request(), "custom_id": "boom"}))
    assert accepted == 0 and [letter["reason"] for letter in letters] == ["unprocessable"]
    assert letters[0]["message"] == "RuntimeError: a bug not yet found"
    assert await agent.take(REQUESTS, orjson.dumps(good_request())) == ([], 1)


async def test_a_message_that_crashed_workers_three_times_is_set_aside(tmp_path: Path) -> None:
    agent = await Agent(tmp_path, set_aside=lambda at: at.offset == 0).start()
    letters, accepted = await agent.take(REQUESTS, orjson.dumps(good_request()))
    assert accepted == 0 and [letter["reason"] for letter in letters] == ["crashed_worker"]
    assert await agent.take(REQUESTS, orjson.dumps(good_request())) == ([], 1)
