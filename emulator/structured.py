"""Structured answers as the emulated providers give them: the schema a request asks its answer to fit, wherever
its provider takes it, and a value that fits it (or, on ``#emulate:invalid-json``, one that does not).

The real APIs constrain decoding to the schema; none promises it in batch mode, which is why the misbehaving
markers exist.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Asked", "asked_of", "instance", "broken"]

Json = dict[str, Any]


class Asked(NamedTuple):
    """A schema asked for, and whether the answer is a forced tool's call rather than text."""

    schema: Json
    tool: bool


def _at(body: Any, *path: str) -> Any:
    for name in path:
        body = body.get(name) if isinstance(body, dict) else None
    return body


def asked_of(body: Json) -> Asked | None:
    """The schema in an OpenAI, Anthropic, Gemini or Bedrock Converse request: their fields' names differ."""
    for path in (("response_format", "json_schema", "schema"), ("text", "format", "schema"),
                 ("output_config", "format", "schema"), ("output_format", "schema"),
                 ("generationConfig", "responseJsonSchema")):
        if isinstance(schema := _at(body, *path), dict):
            return Asked(schema, tool=False)
    if isinstance(schema := _at(body, "generationConfig", "responseSchema"), dict):
        return Asked(_openapi(schema), tool=False)
    return _forced_tool(body)


def _forced_tool(body: Json) -> Asked | None:
    choice = body.get("tool_choice")
    converse = _at(body, "toolConfig", "toolChoice", "tool", "name")
    name = converse or _at(choice, "function", "name") or (_at(choice, "name") if _at(choice, "type") == "tool"
                                                             else None)
    tools = _at(body, "toolConfig", "tools") if converse else body.get("tools")
    for tool in tools if name and isinstance(tools, list) else ():
        spec = tool.get("toolSpec") or tool.get("function") or tool if isinstance(tool, dict) else {}
        if spec.get("name") == name:
            schema = _at(spec, "inputSchema", "json") or spec.get("parameters") or spec.get("input_schema")
            return Asked(schema, tool=True) if isinstance(schema, dict) else None
    return None


def _openapi(schema: Json) -> Json:
    """Gemini's ``Schema`` (types in capitals) read as JSON Schema, enough to make a value of it."""
    out = dict(schema)
    if isinstance(schema.get("type"), str):
        out["type"] = schema["type"].lower()
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: _openapi(v) for k, v in schema["properties"].items() if isinstance(v, dict)}
    if isinstance(schema.get("items"), dict):
        out["items"] = _openapi(schema["items"])
    return out


def instance(schema: Any, seed: str = "", root: Json | None = None, depth: int = 0) -> Any:
    """A value that fits ``schema``: every property given, the first choice of each ``enum`` or ``anyOf``."""
    root = root if root is not None else schema if isinstance(schema, dict) else {}
    if not isinstance(schema, dict) or depth > 12:
        return None
    if isinstance(ref := schema.get("$ref"), str) and ref.startswith("#/"):
        return instance(_at(root, *ref[2:].split("/")), seed, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return instance(schema[key][0], seed, root, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object":
        properties: Json = schema["properties"] if isinstance(schema.get("properties"), dict) else {}
        return {name: instance(sub, name, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [instance(schema.get("items"), seed, root, depth + 1)
                for _ in range(max(1, int(schema.get("minItems") or 1)))]
    return _scalar(kind, schema, seed)


def _scalar(kind: str, schema: Json, seed: str) -> Any:
    if kind in ("integer", "number"):
        least = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(int(least) + 1, 1) if isinstance(least, (int, float)) else 1
        return min(value, schema["maximum"]) if isinstance(schema.get("maximum"), (int, float)) else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = {"date": "2026-12-07", "date-time": "2026-12-07T12:00:00Z", "email": "someone@example.com",
            "uri": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000"}.get(
        str(schema.get("format")), f"emulated {seed}".strip())
    least = schema.get("minLength")
    return text.ljust(least, "x") if isinstance(least, int) else text


def broken(value: Any) -> Any:
    """``value`` made not to fit its schema the way models get it wrong: the first field of the wrong type (an
    object where a scalar was asked for)."""
    if isinstance(value, dict) and value:
        name, first = next(iter(value.items()))
        return {**value, name: "not a number" if not isinstance(first, str) else 12345}
    return "not an object" if isinstance(value, dict) else {"unexpected": [value]}
