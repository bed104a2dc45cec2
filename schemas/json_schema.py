"""JSON Schemas of the public topics, generated from the dataclasses the code uses.

``python -m schemas.json_schema`` writes ``schemas/json/<topic>.schema.json``; a
test fails when a committed file differs from what the dataclasses generate, so
the contract a producer or consumer codes against cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Union

import orjson

from core.limits import LIMITS
from core.validation import REASONS
from schemas import events

__all__ = ["TOPIC_RECORDS", "schema_for", "write_all", "SCHEMA_DIR"]

SCHEMA_DIR = Path(__file__).parent / "json"

#: Public topic (short name) → the record its values are.
TOPIC_RECORDS: dict[str, type] = {
    "requests": events.WorkItem,
    "retry": events.RetryItem,
    "results": events.ResultEvent,
    "failures": events.FailureEvent,
    "deadletter": events.DeadLetter,
    "alerts": events.Alert,
}

#: What the dataclasses cannot say by their types: the request's accepted values.
_CONSTRAINTS: dict[str, dict[str, dict[str, Any]]] = {
    "requests": {
        "custom_id": {"minLength": 1, "description": "Anthropic accepts ^[a-zA-Z0-9_-]{1,64}$"},
        "provider": {"enum": sorted(LIMITS)},
        "params": {"required": ["model"], "description": "the provider's own request body, model included"},
        "endpoint": {"enum": sorted(LIMITS["openai"].endpoints or ()) + [None]},
        "reprocess": {"minLength": 1, "maxLength": 64},
    },
    "results": {"tier": {"enum": ["realtime", "async", "batch"]}},
    "deadletter": {"reason": {"enum": [*REASONS, "invalid_retry"]}},
    "alerts": {"kind": {"enum": ["stalled", "expired", "results_at_risk"]}},
}


def schema_for(topic: str) -> dict[str, Any]:
    record = TOPIC_RECORDS[topic]
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://tierline.dev/schemas/{topic}.schema.json",
        "title": f"tierline.{topic}",
        "description": _first_paragraph(record.__doc__),
        **_object(record, _CONSTRAINTS.get(topic, {})),
    }
    if topic == "requests":
        schema["additionalProperties"] = True  # producers may carry their own fields; they are ignored
    return schema


def write_all(folder: Path = SCHEMA_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for topic in TOPIC_RECORDS:
        path = folder / f"{topic}.schema.json"
        path.write_bytes(orjson.dumps(schema_for(topic), option=orjson.OPT_INDENT_2) + b"\n")
        written.append(path)
    return written


def _object(record: type, constraints: dict[str, dict[str, Any]]) -> dict[str, Any]:
    hints = typing.get_type_hints(record)
    properties, required = {}, []
    for f in dataclasses.fields(record):
        properties[f.name] = {**_type(hints[f.name]), **constraints.get(f.name, {})}
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _type(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [_type(arg) for arg in typing.get_args(hint)]
        return {"anyOf": options}
    if hint is type(None):
        return {"type": "null"}
    if dataclasses.is_dataclass(hint):
        return _object(hint, {})
    if origin is dict or hint is dict:
        return {"type": "object"}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"no JSON Schema for {hint!r}")


def _first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


if __name__ == "__main__":
    for path in write_all():
        print(path)
