"""Where a Messages request asks for a schema, and what its answer says (Anthropic's API, and Bedrock's
InvokeModel of a Claude model, which answers the same); pure."""

from __future__ import annotations

from typing import Any

from core.answers import NOT_GIVEN, Reading

__all__ = ["answer_schema", "reading", "STOPPED_AT_LIMIT"]

Json = dict[str, Any]

#: Stop reasons of an answer cut off before it ended.
STOPPED_AT_LIMIT = frozenset({"max_tokens", "model_context_window_exceeded"})


def answer_schema(endpoint: str | None, params: Json) -> Json | None:
    """Structured outputs' format (``output_config.format``, or the beta's ``output_format``), or a forced
    tool's ``input_schema``."""
    config = params.get("output_config")
    for fmt in (config.get("format") if isinstance(config, dict) else None, params.get("output_format")):
        schema = fmt.get("schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
        if isinstance(schema, dict):
            return schema
    choice = params.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        for tool in params.get("tools") or ():
            if isinstance(tool, dict) and tool.get("name") == choice.get("name"):
                schema = tool.get("input_schema")
                return schema if isinstance(schema, dict) else None
    return None


def reading(response: Json) -> Reading | None:
    if response.get("type") != "message":
        return None
    texts: list[str] = []
    value, other = NOT_GIVEN, False
    for block in response.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            other = True
            value = block.get("input") if value is NOT_GIVEN else value
        elif kind not in ("thinking", "redacted_thinking"):
            other = True
    text = "".join(texts)
    return Reading(text, response.get("stop_reason") in STOPPED_AT_LIMIT,
                   value if not text.strip() else NOT_GIVEN, other)
