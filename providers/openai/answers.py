"""Where an OpenAI request asks for a schema, and what its answer says (Chat Completions, Responses, the legacy
completions); pure. Every OpenAI-shaped lane reads the same."""

from __future__ import annotations

from typing import Any

from core.answers import Reading

__all__ = ["answer_schema", "reading"]

Json = dict[str, Any]


def answer_schema(endpoint: str | None, params: Json) -> Json | None:
    """Chat's ``response_format`` ``json_schema``, the Responses API's ``text.format``, or a forced function's
    ``parameters``."""
    if endpoint == "/v1/responses":
        text = params.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        return _dict(fmt.get("schema")) if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
    fmt = params.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        inner = fmt.get("json_schema")
        return _dict(inner.get("schema")) if isinstance(inner, dict) else None
    return _forced_function(params)


def _forced_function(params: Json) -> Json | None:
    choice = params.get("tool_choice")
    function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    name = function.get("name") if isinstance(function, dict) else None
    for tool in params.get("tools") or ():
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and tool["function"].get("name") == name:
            return _dict(tool["function"].get("parameters"))
    return None


def _dict(value: Any) -> Json | None:
    return value if isinstance(value, dict) else None


def reading(response: Json) -> Reading | None:
    kind = response.get("object")
    if kind == "chat.completion":
        return _chat(response)
    if kind == "response":
        return _response(response)
    if kind == "text_completion":
        choice = _first(response.get("choices"))
        return Reading(str(choice.get("text") or ""), choice.get("finish_reason") == "length")
    return None  # embeddings, moderations, a lane's own endpoint: not text to judge


def _first(rows: Any) -> Json:
    return rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else {}


def _chat(response: Json) -> Reading:
    choice = _first(response.get("choices"))
    message: Json = choice["message"] if isinstance(choice.get("message"), dict) else {}
    content, calls = message.get("content"), message.get("tool_calls")
    text = content if isinstance(content, str) else ""
    if not text.strip() and isinstance(calls, list) and calls:  # the answer is the call (a forced function)
        function = calls[0].get("function") if isinstance(calls[0], dict) else None
        text = str(function.get("arguments") or "") if isinstance(function, dict) else ""
    return Reading(text, choice.get("finish_reason") == "length",
                   other=bool(message.get("refusal") or calls or message.get("audio")))


def _response(response: Json) -> Reading:
    texts: list[str] = []
    calls: list[str] = []
    other = False
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
                else:
                    other = True  # a refusal
        elif item.get("type") == "function_call":
            calls.append(str(item.get("arguments") or ""))
        elif item.get("type") != "reasoning":
            other = True  # a tool's own output: a search, an image
    details = response.get("incomplete_details")
    truncated = response.get("status") == "incomplete" and isinstance(details, dict) and \
        details.get("reason") == "max_output_tokens"
    text = "".join(texts)
    return Reading(text if text.strip() or not calls else calls[0], truncated, other=other or bool(calls))
