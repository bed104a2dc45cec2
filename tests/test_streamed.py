"""A provider's stream read back into the body a whole call returns, by the SDKs' own accumulators:
text, a tool's input from its JSON pieces, thinking with its signature, citations; OpenAI's tool
calls and refusals; an error event mid-stream is no answer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from providers.streamed import StreamFailed, anthropic_message, openai_completion, sse_events


def anthropic_stream(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\r\ndata: " + orjson.dumps(e) + b"\r\n\r\n" for e in events)


def delta(index: int, **change: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": change}


START = {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}}
END = ({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 31}}, {"type": "message_stop"})


def test_an_anthropic_stream_amounts_to_its_message_with_thinking_citations_and_a_tools_input() -> None:
    citation = {"type": "char_location", "cited_text": "Low tide 3:12 pm", "document_index": 0,
                "document_title": "Tide tables", "start_char_index": 0, "end_char_index": 16}
    raw = anthropic_stream(
        START, {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "",
                                                                       "signature": ""}},
        delta(0, type="thinking_delta", thinking="Tide tables "), delta(0, type="thinking_delta", thinking="first."),
        delta(0, type="signature_delta", signature="EqQBCgIYAhIM1gbcDa"),
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        delta(1, type="citations_delta", citation=citation),
        delta(1, type="text_delta", text="Low tide "), delta(1, type="text_delta", text="is at 3:12 pm."),
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1",
                                                                       "name": "tide_table", "input": {}}},
        delta(2, type="input_json_delta", partial_json=""),
        delta(2, type="input_json_delta", partial_json='{"place": "Hays'),
        delta(2, type="input_json_delta", partial_json='tack Rock", "days": [1, 2'),
        delta(2, type="input_json_delta", partial_json="]}"),
        {"type": "content_block_stop", "index": 2}, *END)
    message = anthropic_message(raw)
    assert message is not None
    assert message["content"] == [
        {"type": "thinking", "thinking": "Tide tables first.", "signature": "EqQBCgIYAhIM1gbcDa"},
        {"type": "text", "text": "Low tide is at 3:12 pm.", "citations": [citation]},
        {"type": "tool_use", "id": "toolu_1", "name": "tide_table",
         "input": {"place": "Haystack Rock", "days": [1, 2]}}]
    assert message["stop_reason"] == "tool_use" and message["usage"] == {"input_tokens": 9, "output_tokens": 31}


def test_an_error_event_in_an_anthropic_stream_is_no_answer() -> None:
    raw = anthropic_stream(START, {"type": "content_block_start", "index": 0, "content_block": {"type": "text",
                                                                                               "text": ""}},
                           delta(0, type="text_delta", text="Low"),
                           {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    with pytest.raises(StreamFailed) as failed:
        anthropic_message(raw)
    assert failed.value.error == {"type": "overloaded_error", "message": "Overloaded"}


def openai_stream(*chunks: dict[str, Any], usage: dict[str, int] | None = None) -> bytes:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "system_fingerprint": "fp_1"}
    lines = [{**head, "choices": [{"index": 0, "logprobs": None, "finish_reason": None, **c}]} for c in chunks]
    if usage:
        lines.append({**head, "choices": [], "usage": usage})
    return b"".join(b"data: " + orjson.dumps(line) + b"\n\n" for line in lines) + b"data: [DONE]\n\n"


def test_an_openai_stream_amounts_to_its_completion_with_its_tool_calls() -> None:
    raw = openai_stream(
        {"delta": {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "tide_table", "arguments": ""}}]}},
        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"place": "Hay'}}]}},
        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'stack Rock"}'}}]}},
        {"delta": {"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                                   "function": {"name": "weather", "arguments": '{"days": 2}'}}]}},
        {"delta": {}, "finish_reason": "tool_calls"},
        usage={"prompt_tokens": 9, "completion_tokens": 20, "total_tokens": 29})
    completion = openai_completion(raw)
    assert completion is not None
    [choice] = completion["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "tide_table",
                                                          "arguments": '{"place": "Haystack Rock"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "weather", "arguments": '{"days": 2}'}}]}
    assert completion["usage"]["total_tokens"] == 29 and completion["object"] == "chat.completion"


def test_an_openai_refusal_is_recorded_as_one_and_text_as_text() -> None:
    refused = openai_completion(openai_stream({"delta": {"role": "assistant", "content": None, "refusal": ""}},
                                              {"delta": {"refusal": "I can't "}}, {"delta": {"refusal": "help."}},
                                              {"delta": {}, "finish_reason": "stop"}))
    assert refused is not None
    assert refused["choices"][0]["message"] == {"role": "assistant", "content": None, "refusal": "I can't help."}
    answered = openai_completion(openai_stream({"delta": {"role": "assistant", "content": ""}},
                                               {"delta": {"content": "Low tide"}},
                                               {"delta": {}, "finish_reason": "stop"}))
    assert answered is not None and answered["choices"][0]["message"]["content"] == "Low tide"


def test_an_openai_error_chunk_is_no_answer_and_a_filter_note_is_not_part_of_it() -> None:
    with pytest.raises(StreamFailed):
        openai_completion(b'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n')
    note = b'data: {"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": []}\n\n'
    answered = openai_completion(note + openai_stream({"delta": {"role": "assistant", "content": "Low"}},
                                                      {"delta": {}, "finish_reason": "stop"}))
    assert answered is not None and answered["id"] == "chatcmpl-1"


def test_events_are_named_or_not_and_a_cut_stream_amounts_to_nothing() -> None:
    assert list(sse_events(b"event: ping\ndata: {}\n\ndata: [DONE]\n\n")) == [("ping", b"{}"), ("", b"[DONE]")]
    assert anthropic_message(b"") is None and openai_completion(b"data: [DONE]\n\n") is None
