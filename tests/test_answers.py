"""Checked answers, in-process: each provider's answer read in its own shape, judged against the schema its
request asks for; and the emulator's structured answers, which fit that schema unless told to misbehave."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from core.answers import Reading, judge, judge_answer, schema_problem
from core.outcomes import AnswerRules, ItemContext, ItemOutcome, settle
from core.retry import RetryPolicy
from core.validation import Accepted, Rejected, validate_doc
from emulator.behaviour import Behaviour
from emulator.structured import asked_of, broken, instance
from providers.anthropic import answers as anthropic
from providers.bedrock import answers as bedrock
from providers.gemini import answers as gemini
from providers.openai import answers as openai
from providers.catalogue import build
from streams.settings import Settings

PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                                           "tags": {"type": "array", "items": {"type": "string"}}},
          "required": ["name", "age"], "additionalProperties": False}


def test_an_answer_that_fits_its_schema_is_parsed() -> None:
    judged = judge(Reading('{"name": "Ada", "age": 36}'), PERSON, truncated_fails=False)
    assert judged.error is None and judged.answer == {"name": "Ada", "age": 36}


def test_an_answer_that_does_not_fit_names_the_json_path_and_the_rule() -> None:
    judged = judge(Reading('{"name": "Ada", "age": "thirty-six"}'), PERSON, truncated_fails=False)
    assert judged.error is not None and judged.error.type == "invalid_answer"
    assert "$.age" in judged.error.message and "rule type" in judged.error.message
    missing = judge(Reading('{"name": "Ada"}'), PERSON, truncated_fails=False).error
    assert missing is not None and "'age' is a required property" in missing.message


def test_an_answer_that_is_not_json_is_invalid_and_says_what_it_began_with() -> None:
    error = judge(Reading("Sure! Here is the JSON: {"), PERSON, truncated_fails=False).error
    assert error is not None and error.type == "invalid_answer" and "not JSON" in error.message
    assert "Sure! Here is" in error.message


def test_json_in_one_markdown_fence_is_read_as_the_json() -> None:
    judged = judge(Reading('```json\n{"name": "Ada", "age": 36}\n```'), PERSON, truncated_fails=False)
    assert judged.answer == {"name": "Ada", "age": 36}


def test_a_truncated_answer_fails_with_a_schema_and_without_one_only_when_the_setting_says() -> None:
    cut = Reading('{"name": "Ad', truncated=True)
    error = judge(cut, PERSON, truncated_fails=False).error
    assert error is not None and error.type == "truncated"
    assert judge(Reading("Once upon a", truncated=True), None, truncated_fails=False).error is None
    error = judge(Reading("Once upon a", truncated=True), None, truncated_fails=True).error
    assert error is not None and error.type == "truncated"


def test_an_empty_answer_fails_with_or_without_a_schema_and_before_truncation_is_said() -> None:
    for schema in (PERSON, None):
        error = judge(Reading("  ", truncated=True), schema, truncated_fails=True).error
        assert error is not None and error.type == "empty_answer" and "max_tokens" in error.message
    # A tool call or a refusal is an answer without text, not an empty one.
    assert judge(Reading("", other=True), None, truncated_fails=False).error is None


def test_a_forced_tools_input_is_checked_as_given() -> None:
    assert judge(Reading("", value={"name": "Ada", "age": 1}, other=True), PERSON, False).answer == \
        {"name": "Ada", "age": 1}
    error = judge(Reading("", value={"name": 1}, other=True), PERSON, False).error
    assert error is not None and error.type == "invalid_answer"


def test_an_answer_the_wire_cannot_read_fails_only_if_it_had_to_fit_a_schema() -> None:
    def unreadable(response: dict[str, Any]) -> Reading:
        raise TypeError("odd shape")

    assert judge_answer(unreadable, {"x": 1}, None, False).error is None
    error = judge_answer(unreadable, {"x": 1}, PERSON, False).error
    assert error is not None and error.type == "invalid_answer" and "odd shape" in error.message
    assert judge_answer(unreadable, ["not", "an", "object"], PERSON, False).error is None  # no result at all


@pytest.mark.parametrize("schema,problem", [
    ([], "must be a JSON Schema: an object"),
    ({"type": "strnig"}, "is not a valid JSON Schema"),
    ({"properties": {"a": {"minimum": "zero"}}}, "$.properties.a.minimum"),
])
def test_a_schema_that_cannot_check_answers_is_said_so(schema: Any, problem: str) -> None:
    said = schema_problem(schema)
    assert said is not None and problem in said


# -- each provider's answers, in its own shape ---------------------------------------------------------------

def chat(content: str | None, finish: str = "stop", **message: Any) -> dict[str, Any]:
    return {"object": "chat.completion", "choices": [{"index": 0, "finish_reason": finish,
                                                      "message": {"role": "assistant", "content": content,
                                                                  **message}}]}


def test_openai_schemas_are_found_where_each_api_takes_them() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": PERSON}}
    assert openai.answer_schema("/v1/chat/completions", {"response_format": fmt}) == PERSON
    assert openai.answer_schema("/v1/chat/completions", {"response_format": {"type": "json_object"}}) is None
    text = {"format": {"type": "json_schema", "name": "person", "schema": PERSON}}
    assert openai.answer_schema("/v1/responses", {"text": text}) == PERSON
    tools = [{"type": "function", "function": {"name": "other", "parameters": {}}},
             {"type": "function", "function": {"name": "save", "parameters": PERSON}}]
    forced = {"tools": tools, "tool_choice": {"type": "function", "function": {"name": "save"}}}
    assert openai.answer_schema(None, forced) == PERSON
    assert openai.answer_schema(None, {"tools": tools, "tool_choice": "auto"}) is None


def test_openai_answers_read_as_text_cut_off_or_a_call() -> None:
    assert openai.reading(chat('{"a": 1}')) == Reading('{"a": 1}')
    assert openai.reading(chat("Once", "length")) == Reading("Once", truncated=True)
    call = {"id": "c", "type": "function", "function": {"name": "save", "arguments": '{"name": "A", "age": 2}'}}
    assert openai.reading(chat(None, "tool_calls", tool_calls=[call])) == \
        Reading('{"name": "A", "age": 2}', other=True)
    assert openai.reading(chat(None, refusal="I can't.")) == Reading("", other=True)
    incomplete = {"object": "response", "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
                  "output": [{"type": "reasoning", "summary": []}]}
    assert openai.reading(incomplete) == Reading("", truncated=True)
    done = {"object": "response", "status": "completed", "output": [
        {"type": "message", "content": [{"type": "output_text", "text": "{}"}]}]}
    assert openai.reading(done) == Reading("{}")
    assert openai.reading({"object": "list", "data": [{"embedding": [0.1]}]}) is None


def test_anthropic_schemas_and_answers() -> None:
    fmt = {"type": "json_schema", "schema": PERSON}
    assert anthropic.answer_schema(None, {"output_config": {"format": fmt}}) == PERSON
    assert anthropic.answer_schema(None, {"output_format": fmt}) == PERSON
    tools = [{"name": "save", "input_schema": PERSON}]
    assert anthropic.answer_schema(None, {"tools": tools, "tool_choice": {"type": "tool", "name": "save"}}) == PERSON
    assert anthropic.answer_schema(None, {"tools": tools, "tool_choice": {"type": "auto"}}) is None
    message = {"type": "message", "stop_reason": "end_turn", "content": [
        {"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": '{"a": 1}'}]}
    assert anthropic.reading(message) == Reading('{"a": 1}')
    used = {"type": "message", "stop_reason": "tool_use",
            "content": [{"type": "tool_use", "id": "t", "name": "save", "input": {"name": "A", "age": 1}}]}
    assert anthropic.reading(used) == Reading("", value={"name": "A", "age": 1}, other=True)
    assert anthropic.reading({"type": "message", "stop_reason": "max_tokens", "content": []}) == \
        Reading("", truncated=True)


def test_gemini_schemas_are_json_schema_and_its_openapi_subset_read_as_one() -> None:
    assert gemini.answer_schema(None, {"generationConfig": {"responseJsonSchema": PERSON}}) == PERSON
    subset = {"type": "OBJECT", "properties": {"name": {"type": "STRING"},
                                               "age": {"type": "INTEGER", "nullable": True}},
              "required": ["name"], "propertyOrdering": ["name", "age"]}
    schema = gemini.answer_schema(None, {"generationConfig": {"responseSchema": subset}})
    assert schema == {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "age": {"type": ["integer", "null"]}}}
    assert schema_problem(schema) is None


def test_gemini_answers_skip_thoughts_and_say_max_tokens() -> None:
    answer = {"candidates": [{"finishReason": "STOP", "content": {"role": "model", "parts": [
        {"text": "thinking...", "thought": True}, {"text": '{"a": 1}'}]}}]}
    assert gemini.reading(answer) == Reading('{"a": 1}')
    thought_out = {"candidates": [{"finishReason": "MAX_TOKENS", "content": {"role": "model"}}]}
    assert gemini.reading(thought_out) == Reading("", truncated=True)
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}}
    assert gemini.reading(blocked) == Reading("", other=True)


def test_bedrock_converse_by_its_forced_tool_and_invoke_as_anthropic() -> None:
    config = {"tools": [{"toolSpec": {"name": "save", "inputSchema": {"json": PERSON}}}],
              "toolChoice": {"tool": {"name": "save"}}}
    assert bedrock.answer_schema("converse", {"toolConfig": config}) == PERSON
    assert bedrock.answer_schema("invoke", {"output_config": {"format": {"type": "json_schema",
                                                                           "schema": PERSON}}}) == PERSON
    converse = {"output": {"message": {"content": [{"toolUse": {"toolUseId": "t", "name": "save",
                                                                "input": {"name": "A", "age": 3}}}]}},
                "stopReason": "tool_use"}
    assert bedrock.reading(converse) == Reading("", value={"name": "A", "age": 3}, other=True)
    assert bedrock.reading({"output": {"message": {"content": [{"text": "hi"}]}}, "stopReason": "max_tokens"}) == \
        Reading("hi", truncated=True)
    assert bedrock.reading({"type": "message", "content": [{"type": "text", "text": "x"}],
                            "stop_reason": "end_turn"}) == Reading("x")


# -- the intake and the settle -----------------------------------------------------------------------------

def catalogue() -> Any:
    return build(Settings())


def test_an_item_whose_answer_schema_is_not_one_is_dead_lettered_naming_it() -> None:
    item = {"custom_id": "a", "provider": "anthropic", "answer_schema": {"type": "nope"},
            "params": {"model": "claude-haiku-4-5", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]}}
    verdict = validate_doc(item, catalogue())
    assert isinstance(verdict, Rejected) and verdict.reason == "invalid_answer_schema"
    assert verdict.message.startswith("answer_schema is not a valid JSON Schema")


def test_an_accepted_item_carries_its_own_schema_or_its_requests() -> None:
    params = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}],
              "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}}
    verdict = validate_doc({"custom_id": "a", "provider": "openai", "params": params}, catalogue())
    assert isinstance(verdict, Accepted) and verdict.answer_schema == PERSON
    own = {"type": "object"}
    verdict = validate_doc({"custom_id": "a", "provider": "openai", "params": params, "answer_schema": own},
                           catalogue())
    assert isinstance(verdict, Accepted) and verdict.answer_schema == own and verdict.item.answer_schema == own


def test_settle_retries_a_refused_answer_alone_and_keeps_what_it_was_billed() -> None:
    ctx = ItemContext("a", 1, 0, {}, answer_schema=PERSON)
    rules = AnswerRules(anthropic.reading, truncated_fails=False)
    usage = {"input_tokens": 10, "output_tokens": 5}
    bad = ItemOutcome("a", {"type": "message", "stop_reason": "end_turn",
                            "content": [{"type": "text", "text": "{}"}]}, usage, None)
    settled = settle(bad, ctx, "anthropic", "b1", RetryPolicy(3, 1, 10), 0.0, rules)
    assert settled.failure is not None and settled.failure.error.type == "invalid_answer"
    assert settled.failure.retryable and not settled.failure.final and settled.retry_at is not None
    assert settled.billed == (bad.response, usage)
    good = ItemOutcome("a", {"type": "message", "stop_reason": "end_turn",
                             "content": [{"type": "text", "text": '{"name": "A", "age": 1}'}]}, usage, None)
    result = settle(good, ctx, "anthropic", "b1", RetryPolicy(3, 1, 10), 0.0, rules).result
    assert result is not None and result.answer == {"name": "A", "age": 1}
    last = settle(bad, ItemContext("a", 3, 0, {}, answer_schema=PERSON), "anthropic", "b1", RetryPolicy(3, 1, 10),
                  0.0, rules)
    assert last.failure is not None and last.failure.final and last.retry_at is None


def test_an_items_context_keeps_its_schema_through_the_batch_log() -> None:
    ctx = ItemContext("a", 2, 1, {"k": 1}, answer_schema=PERSON)
    assert ItemContext.decode(ctx.encode()).answer_schema == PERSON
    assert "answer_schema" not in ItemContext("a", 1, 0, {}).encode()


# -- the emulator's side ---------------------------------------------------------------------------------

SCHEMAS = [
    PERSON,
    {"type": "object", "properties": {"when": {"type": "string", "format": "date"},
                                      "kind": {"enum": ["a", "b"]}, "score": {"type": "number", "minimum": 3,
                                                                               "maximum": 5},
                                      "items": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/leaf"}}},
     "required": ["when", "kind", "score", "items"], "$defs": {"leaf": {"type": "object", "properties": {
         "ok": {"type": "boolean"}, "note": {"type": ["string", "null"], "minLength": 20}}}}},
    {"anyOf": [{"type": "integer"}, {"type": "string"}]},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_emulator_answers_a_value_that_fits_and_on_request_one_that_does_not(schema: dict[str, Any]) -> None:
    validator = Draft202012Validator(schema)
    value = instance(schema)
    assert validator.is_valid(value), list(validator.iter_errors(value))
    assert not validator.is_valid(broken(value))


def test_the_emulator_finds_the_schema_in_every_providers_request() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}
    assert asked_of({"response_format": fmt}) == (PERSON, False)
    assert asked_of({"tools": [{"name": "save", "input_schema": PERSON}],
                     "tool_choice": {"type": "tool", "name": "save"}}) == (PERSON, True)
    assert asked_of({"toolConfig": {"tools": [{"toolSpec": {"name": "s", "inputSchema": {"json": PERSON}}}],
                                    "toolChoice": {"tool": {"name": "s"}}}}) == (PERSON, True)
    assert asked_of({"generationConfig": {"responseSchema": {"type": "OBJECT"}}}) == ({"type": "object"}, False)
    assert asked_of({"messages": []}) is None


@pytest.mark.parametrize("marker,expected", [("", None), ("#emulate:invalid-json", "invalid_answer"),
                                             ("#emulate:truncated", "truncated"), ("#emulate:empty", "empty_answer")])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "bedrock"])
def test_each_emulated_provider_misbehaves_in_its_own_shape(provider: str, marker: str,
                                                            expected: str | None) -> None:
    from emulator.anthropic_api import _message
    from emulator.bedrock_api import output
    from emulator.gemini_api import _response
    from emulator.openai_api import _response_body

    prompt = [{"role": "user", "content": f"Who? {marker}"}]
    if provider == "openai":
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": prompt, "response_format": {
            "type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}}
    elif provider == "gemini":
        body = {"contents": [{"role": "user", "parts": [{"text": f"Who? {marker}"}]}],
                "generationConfig": {"responseJsonSchema": PERSON}}
    elif provider == "bedrock":
        body = {"messages": [{"role": "user", "content": [{"text": f"Who? {marker}"}]}], "toolConfig": {
            "tools": [{"toolSpec": {"name": "save", "inputSchema": {"json": PERSON}}}],
            "toolChoice": {"tool": {"name": "save"}}}}
    else:
        body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": prompt,
                "output_config": {"format": {"type": "json_schema", "schema": PERSON}}}
    outcome = Behaviour().decide("x", orjson.dumps(body), body, provider)
    response = (_response_body("/v1/chat/completions", body, outcome) if provider == "openai" else
                _response("gemini-2.5-flash", outcome) if provider == "gemini" else
                output("amazon.nova-lite-v1:0", outcome, True, body) if provider == "bedrock" else
                _message(body, outcome))
    read = {"openai": openai.reading, "anthropic": anthropic.reading, "gemini": gemini.reading,
            "bedrock": bedrock.reading}[provider]
    judged = judge_answer(read, response, PERSON, truncated_fails=False)
    assert (judged.error.type if judged.error else None) == expected
    if expected is None:
        assert Draft202012Validator(PERSON).is_valid(judged.answer)
