"""Checked answers end to end: a real worker, the embedded broker, and the emulator through the official SDKs.

Every provider's structured-output request, in the batch and the async tiers: an answer that fits its schema is
a result carrying it parsed; one that does not (``#emulate:invalid-json``), one cut off at the token limit
(``#emulate:truncated``) and one empty (``#emulate:empty``) fail alone, are retried, and end as one final
failure that says why and what it was billed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from streams.local.workload import BEDROCK_CLAUDE, BEDROCK_NOVA, GEMINI_MODEL, LANE_MODELS
from tests.support import follow, publish_items, scraped, total, validate_events

pytestmark = pytest.mark.integration

PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
          "required": ["name", "age"], "additionalProperties": False}
GEMINI_PERSON = {"type": "OBJECT", "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER"}},
                 "required": ["name", "age"]}
MARKERS = {"": None, "#emulate:invalid-json": "invalid_answer", "#emulate:truncated": "truncated",
           "#emulate:empty": "empty_answer"}
ATTEMPTS = 2


def structured(kind: str, custom_id: str, marker: str) -> dict[str, Any]:
    """An item asking for a ``PERSON``, in the way ``kind`` names (provider, then where the schema goes)."""
    say = f"Who wrote the first program? {marker}".strip()
    chat = [{"role": "user", "content": say}]
    item: dict[str, Any] = {"custom_id": custom_id, "metadata": {"kind": kind}}
    if kind == "openai-chat":
        fmt = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": PERSON}}
        return {**item, "provider": "openai", "params": {"model": "gpt-4o-mini", "messages": chat,
                                                         "response_format": fmt}}
    if kind == "openai-responses":
        text = {"format": {"type": "json_schema", "name": "person", "schema": PERSON}}
        return {**item, "provider": "openai", "endpoint": "/v1/responses",
                "params": {"model": "gpt-4o-mini", "input": say, "text": text}}
    if kind == "anthropic-format":
        return {**item, "provider": "anthropic", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 256, "messages": chat,
            "output_config": {"format": {"type": "json_schema", "schema": PERSON}}}}
    if kind == "anthropic-tool":
        return {**item, "provider": "anthropic", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 256, "messages": chat,
            "tools": [{"name": "record_person", "description": "Record a person.", "input_schema": PERSON}],
            "tool_choice": {"type": "tool", "name": "record_person"}}}
    if kind == "gemini-json":
        return {**item, "provider": "gemini", "model": GEMINI_MODEL, "params": {
            "contents": [{"role": "user", "parts": [{"text": say}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": PERSON}}}
    if kind == "gemini-schema":
        return {**item, "provider": "gemini", "model": GEMINI_MODEL, "params": {
            "contents": [{"role": "user", "parts": [{"text": say}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseSchema": GEMINI_PERSON}}}
    if kind == "bedrock-converse":
        config = {"tools": [{"toolSpec": {"name": "record_person", "inputSchema": {"json": PERSON}}}],
                  "toolChoice": {"tool": {"name": "record_person"}}}
        return {**item, "provider": "bedrock", "model": BEDROCK_NOVA, "invocation": "converse", "params": {
            "messages": [{"role": "user", "content": [{"text": say}]}], "toolConfig": config}}
    if kind == "bedrock-invoke":
        return {**item, "provider": "bedrock", "model": BEDROCK_CLAUDE, "params": {
            "anthropic_version": "bedrock-2023-05-31", "max_tokens": 256, "messages": chat,
            "output_config": {"format": {"type": "json_schema", "schema": PERSON}}}}
    assert kind == "groq"
    model, endpoint = LANE_MODELS["groq"]
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
    return {**item, "provider": "groq", "endpoint": endpoint, "params": {"model": model, "messages": chat,
                                                                          "response_format": fmt}}


KINDS = ("openai-chat", "openai-responses", "anthropic-format", "anthropic-tool", "gemini-json", "gemini-schema",
         "bedrock-converse", "bedrock-invoke", "groq")
ASYNC_KINDS = ("openai-chat", "anthropic-tool", "gemini-json")


def expected() -> dict[str, str | None]:
    """Each item's custom_id, and the failure it must end with (None: a result)."""
    ends = {f"{kind}-{n}": reason for kind in KINDS for n, reason in enumerate(MARKERS.values())}
    ends |= {f"async-{kind}-{n}": reason for kind in ASYNC_KINDS for n, reason in enumerate(MARKERS.values())}
    return ends | {"own-schema": "invalid_answer", "plain-truncated": None, "plain-empty": "empty_answer"}


def items() -> list[dict[str, Any]]:
    batch = [structured(kind, f"{kind}-{n}", marker) for kind in KINDS for n, marker in enumerate(MARKERS)]
    routed = [{**structured(kind, f"async-{kind}-{n}", marker), "tier": "async"}
              for kind in ASYNC_KINDS for n, marker in enumerate(MARKERS)]
    plain = {"model": "claude-haiku-4-5", "max_tokens": 64}
    return [*batch, *routed,
            # Its own answer_schema, where the request asks for prose: the prose does not parse.
            {"custom_id": "own-schema", "provider": "anthropic", "answer_schema": PERSON,
             "params": {**plain, "messages": [{"role": "user", "content": "Who wrote the first program?"}]}},
            # Without a schema, a cut-off answer is a result (TIERLINE_TRUNCATED_FAILS is false), an empty one not.
            {"custom_id": "plain-truncated", "provider": "anthropic",
             "params": {**plain, "messages": [{"role": "user", "content": "Tell a story #emulate:truncated"}]}},
            {"custom_id": "plain-empty", "provider": "anthropic",
             "params": {**plain, "messages": [{"role": "user", "content": "Think hard #emulate:empty"}]}}]


@pytest.fixture(scope="module")
def run(start_worker):  # type: ignore[no-untyped-def]
    settings = start_worker(TIERLINE_MAX_ATTEMPTS=str(ATTEMPTS), TIERLINE_BATCH_MAX_WAIT_S="2")
    publish_items(settings, items())
    ends = expected()
    progress = asyncio.run(follow(settings, lambda p: set(ends) <= p.ended(), timeout=240))
    return settings, progress, ends


def test_answers_that_fit_are_results_carrying_them_parsed(run) -> None:  # type: ignore[no-untyped-def]
    _settings, progress, ends = run
    fits = Draft202012Validator(PERSON)
    for custom_id in (cid for cid, reason in ends.items() if reason is None and cid != "plain-truncated"):
        [result] = progress.results[custom_id]
        assert result["attempt"] == 1 and custom_id not in progress.failures, custom_id
        assert fits.is_valid(result["answer"]), (custom_id, result["answer"])
    [cut] = progress.results["plain-truncated"]
    assert cut["answer"] is None and cut["response"]["stop_reason"] == "max_tokens"


def test_answers_refused_are_retried_alone_then_final_saying_why(run) -> None:  # type: ignore[no-untyped-def]
    _settings, progress, ends = run
    for custom_id, reason in ends.items():
        if reason is None:
            continue
        assert custom_id not in progress.results, custom_id
        failures = progress.failures[custom_id]
        assert [(f["attempt"], f["final"], f["error"]["type"]) for f in failures] == \
            [(n, n == ATTEMPTS, reason) for n in range(1, ATTEMPTS + 1)], custom_id
        assert all(f["retryable"] and f["cost_usd"] > 0 and f["model"] for f in failures), failures
    path = progress.failures["openai-chat-1"][0]["error"]["message"]
    assert "does not fit its schema at $.name" in path and "rule type" in path
    assert "not JSON" in progress.failures["own-schema"][0]["error"]["message"]


def test_every_event_fits_its_topics_schema_and_refusals_are_counted(run) -> None:  # type: ignore[no-untyped-def]
    settings, progress, ends = run
    validate_events("results", [e for events in progress.results.values() for e in events])
    validate_events("failures", [e for events in progress.failures.values() for e in events])
    samples = scraped(settings.web_port)
    refused = sum(1 for reason in ends.values() if reason) * ATTEMPTS
    by_reason = {reason: total(samples, "tierline_answer_failures_total", reason=reason)
                 for reason in ("invalid_answer", "truncated", "empty_answer")}
    assert sum(by_reason.values()) == refused, by_reason
    assert total(samples, "tierline_answer_failures_total", tier="async") == \
        sum(1 for cid, r in ends.items() if r and cid.startswith("async-")) * ATTEMPTS


def test_realtime_answers_reach_the_caller_as_they_are_and_are_recorded_checked(run) -> None:  # type: ignore[no-untyped-def]
    import anthropic
    import openai

    settings, _progress, _ends = run
    base = f"http://127.0.0.1:{settings.web_port}/realtime"
    claude = anthropic.Anthropic(base_url=f"{base}/anthropic", api_key="unused", max_retries=0)
    gpt = openai.OpenAI(base_url=f"{base}/openai/v1", api_key="unused", max_retries=0)
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
    fine = gpt.chat.completions.create(model="gpt-4o-mini", response_format=fmt,  # type: ignore[call-overload]
                                       messages=[{"role": "user", "content": "Who?"}],
                                       extra_headers={"tierline-custom-id": "rt-fits"})
    assert Draft202012Validator(PERSON).is_valid(orjson.loads(fine.choices[0].message.content or ""))
    chunks = list(gpt.chat.completions.create(  # type: ignore[call-overload]
        model="gpt-4o-mini", response_format=fmt, stream=True,
        messages=[{"role": "user", "content": "Who? #emulate:invalid-json"}],
        extra_headers={"tierline-custom-id": "rt-streamed-invalid"}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # the caller has it as it was
    tool = {"name": "record_person", "input_schema": PERSON}
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=64, tools=[tool],  # type: ignore[list-item]
                                tool_choice={"type": "tool", "name": "record_person"},
                                messages=[{"role": "user", "content": "Who? #emulate:empty"}],
                                extra_headers={"tierline-custom-id": "rt-empty"}) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "max_tokens" and not message.content
    ids = {"rt-fits", "rt-streamed-invalid", "rt-empty"}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=60))
    [fits] = progress.results["rt-fits"]
    assert fits["tier"] == "realtime" and Draft202012Validator(PERSON).is_valid(fits["answer"])
    for custom_id, reason in (("rt-streamed-invalid", "invalid_answer"), ("rt-empty", "empty_answer")):
        [failure] = progress.failures[custom_id]
        assert failure["error"]["type"] == reason and failure["final"] and not failure["retryable"]
        assert failure["tier"] == "realtime" and failure["cost_usd"] > 0


def test_the_report_counts_answers_refused_by_reason_and_their_cost(run) -> None:  # type: ignore[no-untyped-def]
    from tests.support import topic_values
    from tests.test_operator_cli import tierline

    settings, _progress, ends = run
    done = tierline(settings, "report", "--json")
    assert done.returncode == 0, done.stderr
    refused = orjson.loads(done.stdout)["refused_answers"]
    # Every failure on the topic when the report read it (the realtime test's too, if it ran first).
    failures = asyncio.run(topic_values(settings, settings.topics.failures))
    for reason in ("invalid_answer", "truncated", "empty_answer"):
        events = [f for f in failures if f["error"]["type"] == reason]
        assert refused[reason]["final"] == sum(f["final"] for f in events) >= sum(r == reason for r in ends.values())
        assert refused[reason]["attempts"] == len(events)
        assert refused[reason]["cost_usd"] == pytest.approx(sum(f["cost_usd"] for f in events), abs=1e-5)
    table = tierline(settings, "report")
    assert "answers refused" in table.stdout and "invalid_answer" in table.stdout
