"""Where a Bedrock request asks for a schema, and what its answer says: an InvokeModel body of a Claude model
reads as Anthropic's; a Converse one by its forced tool; pure."""

from __future__ import annotations

from typing import Any

from core.answers import NOT_GIVEN, Reading
from providers.anthropic import answers as anthropic

__all__ = ["answer_schema", "reading"]

Json = dict[str, Any]


def answer_schema(invocation: str | None, params: Json) -> Json | None:
    """``invocation`` is the item's: ``invoke`` or ``converse``."""
    if invocation != "converse":
        return anthropic.answer_schema(None, params)
    config = params.get("toolConfig")
    choice = config.get("toolChoice") if isinstance(config, dict) else None
    forced = choice.get("tool") if isinstance(choice, dict) else None
    name = forced.get("name") if isinstance(forced, dict) else None
    for tool in (config.get("tools") if isinstance(config, dict) and name else None) or ():
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict) and spec.get("name") == name:
            schema = (spec.get("inputSchema") or {}).get("json")
            return schema if isinstance(schema, dict) else None
    return None


def reading(response: Json) -> Reading | None:
    output = response.get("output")
    if not isinstance(output, dict):
        return anthropic.reading(response)  # an InvokeModel answer: a Claude model's is Anthropic's message
    message = output.get("message")
    texts: list[str] = []
    value, other = NOT_GIVEN, False
    for block in (message.get("content") if isinstance(message, dict) else None) or ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            other = True
            value = block["toolUse"].get("input") if value is NOT_GIVEN else value
        elif "reasoningContent" not in block:
            other = True
    text = "".join(texts)
    return Reading(text, response.get("stopReason") in ("max_tokens", "model_context_window_exceeded"),
                   value if not text.strip() else NOT_GIVEN, other)
