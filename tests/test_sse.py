"""A provider's stream read back into the body a whole call returns."""

from __future__ import annotations

from core.sse import anthropic_message, openai_completion, sse_events

ANTHROPIC = (
    b'event: message_start\r\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":'
    b'"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":9,'
    b'"output_tokens":1}}}\r\n\r\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":'
    b'{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type":"ping"}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    b'"text":"Low tide "}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    b'"text":"at 3 pm."}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":6}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def test_an_anthropic_stream_amounts_to_its_message() -> None:
    message = anthropic_message(ANTHROPIC)
    assert message is not None
    assert message["content"] == [{"type": "text", "text": "Low tide at 3 pm."}]
    assert message["stop_reason"] == "end_turn" and message["usage"] == {"input_tokens": 9, "output_tokens": 6}


def test_an_openai_stream_amounts_to_its_completion() -> None:
    head = b'"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini"'
    raw = (b'data: {' + head + b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
           b'"finish_reason":null}]}\n\n'
           b'data: {' + head + b',"choices":[{"index":0,"delta":{"content":"Low tide"},"finish_reason":null}]}\n\n'
           b'data: {' + head + b',"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
           b'data: {' + head + b',"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n'
           b'data: [DONE]\n\n')
    completion = openai_completion(raw)
    assert completion is not None
    assert completion["choices"] == [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": "Low tide"}}]
    assert completion["usage"]["total_tokens"] == 11


def test_events_are_named_or_not_and_a_cut_stream_amounts_to_nothing() -> None:
    assert list(sse_events(b"event: ping\ndata: {}\n\ndata: [DONE]\n\n")) == [("ping", b"{}"), ("", b"[DONE]")]
    assert anthropic_message(b"") is None and openai_completion(b"data: [DONE]\n\n") is None
