"""What an emulated answer holds, by the request's ``#emulate:`` shape markers (``behaviour.SHAPES``):
text alone, or a tool call, a thinking block, citations, a refusal, in each provider's own form.

The whole answer is built here once; a streamed answer is cut from it (``realtime_api``), so the
two say the same by construction, as the real APIs do.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from emulator.behaviour import Outcome
from emulator.ids import new_id

__all__ = ["anthropic_content", "openai_message"]

Json = dict[str, Any]

REFUSAL = "I'm sorry, but I can't help with that request."


def _tool_name(request: Json) -> str:
    """The request's first tool's name (either provider's shape), or a made-up one."""
    for tool in request.get("tools") or ():
        if isinstance(tool, dict):
            name = tool.get("name") or (tool.get("function") or {}).get("name")
            if isinstance(name, str) and name:
                return name
    return "lookup"


def _tool_input(outcome: Outcome) -> Json:
    return {"query": outcome.text.removeprefix("Answer to: ")[:80], "limit": 3, "filters": {"fresh": True}}


def anthropic_content(params: Json, outcome: Outcome) -> tuple[list[Json], str]:
    """A message's content blocks and its stop reason."""
    content: list[Json] = []
    if "thinking" in outcome.shape:
        thought = "The user asks: " + outcome.text.removeprefix("Answer to: ") + ". I should answer plainly."
        signature = base64.b64encode(hashlib.sha256(thought.encode()).digest() * 3).decode()
        content.append({"type": "thinking", "thinking": thought, "signature": signature})
    text: Json = {"type": "text", "text": outcome.text}
    if "citations" in outcome.shape:
        cited = outcome.text[:40]
        text["citations"] = [{"type": "char_location", "cited_text": cited, "document_index": 0,
                              "document_title": "Tide tables", "start_char_index": 0, "end_char_index": len(cited)}]
    content.append(text)
    if "tool-use" in outcome.shape:
        content.append({"type": "tool_use", "id": new_id("toolu_"), "name": _tool_name(params),
                        "input": _tool_input(outcome)})
        return content, "tool_use"
    return content, "end_turn"


def openai_message(body: Json, outcome: Outcome) -> tuple[Json, str]:
    """A chat completion's message and its finish reason."""
    if "refusal" in outcome.shape:
        return {"role": "assistant", "content": None, "refusal": REFUSAL}, "stop"
    if "tool-use" in outcome.shape:
        call = {"id": new_id("call_"), "type": "function",
                "function": {"name": _tool_name(body), "arguments": orjson.dumps(_tool_input(outcome)).decode()}}
        return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}, "tool_calls"
    return {"role": "assistant", "content": outcome.text, "refusal": None}, "stop"
