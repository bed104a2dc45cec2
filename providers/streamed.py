"""A provider's streamed answer read back into the body the same call returns whole, by the official
SDKs' own accumulators: Anthropic's ``accumulate_event`` (what ``MessageStream`` runs) and OpenAI's
``ChatCompletionStreamState``. They put a tool's input back together from its JSON pieces, a thinking
block with its signature, citations, a refusal, tool calls, the usage; no I/O.

The SDKs are imported when a stream is first read back (the Anthropic SDK alone is about 50 MB
resident): a worker that serves no realtime stream never loads them for it.

The realtime tier passes a stream to its client byte for byte and keeps a copy; from the copy, after
the answer has gone, it builds the result event as if the call had not been streamed.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

__all__ = ["StreamFailed", "anthropic_message", "openai_completion", "sse_events"]

Json = dict[str, Any]

#: What OpenAI's accumulator sets to null on every message that a whole answer leaves out unless used.
UNUSED_IF_NULL = ("annotations", "audio", "function_call", "tool_calls")


class StreamFailed(Exception):
    """The provider ended its stream with an error event instead of the rest of the answer."""

    def __init__(self, error: Json) -> None:
        super().__init__(str(error.get("message") or error))
        self.error = error


def sse_events(raw: bytes) -> Iterator[tuple[str, bytes]]:
    """``(event name, data)`` of each event ("" when unnamed), in order."""
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = "", []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip())
        if data:
            yield name, b"\n".join(data)


def anthropic_message(raw: bytes) -> Json | None:
    """The message an Anthropic ``/v1/messages`` stream amounts to; None if it never started.

    Raises ``StreamFailed`` for an ``error`` event (an overload mid-stream, say): the answer is not whole.
    """
    from anthropic.lib.streaming._messages import accumulate_event  # MessageStream's own step, on raw events

    snapshot: Any = None
    pieces: dict[int, bytes] = {}  # each tool's input JSON so far, as the accumulator keeps it
    for name, data in sse_events(raw):
        event = orjson.loads(data)
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "error" or name == "error":
            raise StreamFailed(event.get("error") or {} if isinstance(event, dict) else {"message": str(event)})
        if kind in ("ping", "message_stop") or (snapshot is None and kind != "message_start"):
            continue
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=pieces)
    return None if snapshot is None else dict(snapshot.to_dict(mode="json"))


def openai_completion(raw: bytes) -> Json | None:
    """The chat.completion an OpenAI ``/v1/chat/completions`` stream amounts to; None if it was empty.

    Raises ``StreamFailed`` for an ``error`` object in the stream.
    """
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    started = False
    for _, data in sse_events(raw):
        if data == b"[DONE]":
            break
        chunk = orjson.loads(data)
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk:
            raise StreamFailed(chunk["error"] if isinstance(chunk["error"], dict) else {"message": chunk["error"]})
        if chunk.get("object") != "chat.completion.chunk":  # Azure's content-filter notes, say: not the answer's
            continue
        state.handle_chunk(ChatCompletionChunk.construct(**chunk))
        started = True
    if not started:
        return None
    completion: Json = state.current_completion_snapshot.to_dict(mode="json")
    for choice in completion.get("choices") or ():
        message = choice.get("message") or {}
        message.pop("parsed", None)  # the SDK's own (structured outputs), never the API's
        for key in UNUSED_IF_NULL:
            if key in message and message[key] is None:
                del message[key]
        for call in message.get("tool_calls") or ():
            call.pop("index", None)  # the stream's bookkeeping: a whole answer's calls have none
            call.get("function", {}).pop("parsed_arguments", None)
    return completion
