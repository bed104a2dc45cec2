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

__all__ = ["anthropic_content", "openai_message", "converse_content"]

Json = dict[str, Any]

REFUSAL = "I'm sorry, but I can't help with that request."


def _tool_name(request: Json) -> str:
    """The tool the request forces, else its first tool's name (any provider's shape), or a made-up one."""
    choice = request.get("tool_choice")
    forced = (choice.get("name") or (choice.get("function") or {}).get("name")) if isinstance(choice, dict) else None
    config: Json = request["toolConfig"] if isinstance(request.get("toolConfig"), dict) else {}
    converse = ((config.get("toolChoice") or {}).get("tool") or {}).get("name")
    if isinstance(forced or converse, str):
        return str(forced or converse)
    for tool in request.get("tools") or config.get("tools") or ():
        if isinstance(tool, dict):
            name = tool.get("name") or (tool.get("function") or tool.get("toolSpec") or {}).get("name")
            if isinstance(name, str) and name:
                return name
    return "lookup"


def _tool_input(outcome: Outcome) -> Any:
    if outcome.tool_input is not None:  # a forced tool's, made to its schema
        return outcome.tool_input
    return {"query": outcome.text.removeprefix("Answer to: ")[:80], "limit": 3, "filters": {"fresh": True}}


def anthropic_content(params: Json, outcome: Outcome) -> tuple[list[Json], str]:
    """A message's content blocks and its stop reason."""
    content: list[Json] = []
    if "thinking" in outcome.shape:
        thought = "The user asks: " + outcome.text.removeprefix("Answer to: ") + ". I should answer plainly."
        signature = base64.b64encode(hashlib.sha256(thought.encode()).digest() * 3).decode()
        content.append({"type": "thinking", "thinking": thought, "signature": signature})
    if outcome.text:
        text: Json = {"type": "text", "text": outcome.text}
        if "citations" in outcome.shape:
            cited = outcome.text[:40]
            text["citations"] = [{"type": "char_location", "cited_text": cited, "document_index": 0,
                                  "document_title": "Tide tables", "start_char_index": 0,
                                  "end_char_index": len(cited)}]
        content.append(text)
    if "tool-use" in outcome.shape:
        content.append({"type": "tool_use", "id": new_id("toolu_"), "name": _tool_name(params),
                        "input": _tool_input(outcome)})
    return content, "max_tokens" if outcome.at_limit else "tool_use" if "tool-use" in outcome.shape else "end_turn"


def openai_message(body: Json, outcome: Outcome) -> tuple[Json, str]:
    """A chat completion's message and its finish reason."""
    stop = "length" if outcome.at_limit else "stop"
    if "refusal" in outcome.shape:
        return {"role": "assistant", "content": None, "refusal": REFUSAL}, stop
    if "tool-use" in outcome.shape:
        call = {"id": new_id("call_"), "type": "function",
                "function": {"name": _tool_name(body), "arguments": orjson.dumps(_tool_input(outcome)).decode()}}
        return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}, \
            "length" if outcome.at_limit else "tool_calls"
    return {"role": "assistant", "content": outcome.text, "refusal": None}, stop


def converse_content(body: Json, outcome: Outcome) -> tuple[list[Json], str]:
    """A Converse answer's content blocks and its stop reason."""
    content: list[Json] = [{"text": outcome.text}] if outcome.text else []
    if "tool-use" in outcome.shape:
        content.append({"toolUse": {"toolUseId": new_id("tooluse_"), "name": _tool_name(body),
                                    "input": _tool_input(outcome)}})
    return content, "max_tokens" if outcome.at_limit else "tool_use" if "tool-use" in outcome.shape else "end_turn"
