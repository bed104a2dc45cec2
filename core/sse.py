"""Server-sent events of the providers' streaming APIs, read back into the body a whole call returns; pure.

The realtime tier passes a provider's stream to its client byte for byte and keeps a
copy; from the copy it builds the result event, as if the call had not been streamed.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

__all__ = ["sse_events", "anthropic_message", "openai_completion"]

Json = dict[str, Any]


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
    """The message an Anthropic ``/v1/messages`` stream amounts to; None if it never started."""
    message: Json | None = None
    texts: dict[int, list[str]] = {}
    for _, data in sse_events(raw):
        event = orjson.loads(data)
        kind = event.get("type")
        if kind == "message_start":
            message = event["message"]
        elif message is None:
            continue
        elif kind == "content_block_start":
            message["content"].append(event["content_block"])
            texts[event["index"]] = []
        elif kind == "content_block_delta" and event["delta"].get("type") == "text_delta":
            texts.setdefault(event["index"], []).append(event["delta"]["text"])
        elif kind == "message_delta":
            message.update(event.get("delta") or {})
            message["usage"] = {**message.get("usage", {}), **(event.get("usage") or {})}
    if message is not None:
        for index, parts in texts.items():
            if index < len(message["content"]) and message["content"][index].get("type") == "text":
                message["content"][index]["text"] = "".join(parts)
    return message


def openai_completion(raw: bytes) -> Json | None:
    """The chat.completion an OpenAI ``/v1/chat/completions`` stream amounts to; None if it was empty."""
    completion: Json | None = None
    contents: dict[int, list[str]] = {}
    for _, data in sse_events(raw):
        if data == b"[DONE]":
            break
        chunk = orjson.loads(data)
        if completion is None:
            completion = {"id": chunk["id"], "object": "chat.completion", "created": chunk["created"],
                          "model": chunk["model"], "choices": [], "usage": None}
        for choice in chunk.get("choices") or ():
            index = choice["index"]
            while len(completion["choices"]) <= index:
                completion["choices"].append({"index": len(completion["choices"]), "finish_reason": None,
                                              "message": {"role": "assistant", "content": None}})
            delta = choice.get("delta") or {}
            if delta.get("content"):
                contents.setdefault(index, []).append(delta["content"])
            if choice.get("finish_reason"):
                completion["choices"][index]["finish_reason"] = choice["finish_reason"]
        if chunk.get("usage"):
            completion["usage"] = chunk["usage"]
    if completion is not None:
        for index, parts in contents.items():
            completion["choices"][index]["message"]["content"] = "".join(parts)
    return completion
