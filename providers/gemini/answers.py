"""Where a ``GenerateContentRequest`` asks for a schema, and what its answer says; pure.

``responseJsonSchema`` is JSON Schema as it is; ``responseSchema`` is Gemini's OpenAPI subset (``type``
in capitals, ``nullable``), read here as the JSON Schema it means.
"""

from __future__ import annotations

from typing import Any

from core.answers import Reading

__all__ = ["answer_schema", "reading", "json_schema_of"]

Json = dict[str, Any]

#: The members of Gemini's ``Schema`` that mean in JSON Schema what they say; others (``propertyOrdering``,
#: ``example``) are dropped.
_SAME = ("description", "title", "enum", "format", "pattern", "minimum", "maximum", "minItems", "maxItems",
         "minLength", "maxLength", "minProperties", "maxProperties", "required", "default")


def answer_schema(endpoint: str | None, params: Json) -> Json | None:
    config = params.get("generationConfig") or params.get("generation_config")
    if not isinstance(config, dict):
        return None
    schema = config.get("responseJsonSchema", config.get("response_json_schema"))
    if isinstance(schema, dict):
        return schema
    schema = config.get("responseSchema", config.get("response_schema"))
    return json_schema_of(schema) if isinstance(schema, dict) else None


def json_schema_of(schema: Json) -> Json:
    """A Gemini ``Schema`` as JSON Schema."""
    out: Json = {name: schema[name] for name in _SAME if name in schema}
    kind = schema.get("type")
    if isinstance(kind, str) and kind.upper() != "TYPE_UNSPECIFIED":
        out["type"] = [kind.lower(), "null"] if schema.get("nullable") else kind.lower()
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {name: json_schema_of(sub) for name, sub in schema["properties"].items()
                             if isinstance(sub, dict)}
    if isinstance(schema.get("items"), dict):
        out["items"] = json_schema_of(schema["items"])
    if isinstance(schema.get("anyOf"), list):
        out["anyOf"] = [json_schema_of(sub) for sub in schema["anyOf"] if isinstance(sub, dict)]
    return out


def reading(response: Json) -> Reading | None:
    candidates = response.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        blocked = isinstance(response.get("promptFeedback"), dict)  # refused before any candidate: said, not empty
        return Reading("", other=blocked) if "candidates" in response or blocked else None
    candidate = candidates[0]
    content = candidate.get("content")
    texts: list[str] = []
    other = False
    for part in (content.get("parts") if isinstance(content, dict) else None) or ():
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            other = True  # a function call, inline data
    return Reading("".join(texts), candidate.get("finishReason") == "MAX_TOKENS", other=other)
