"""Gemini's batch requests and request type; pure.

A Gemini item names its model beside its body, or in the body's own ``model`` (``models/`` optional):
the job (and a synchronous call's URL) names it, a request never does. Its line is ``{"key", "request"}``.
"""

from __future__ import annotations

from typing import Any

import orjson

from core.answers import Reading
from core.limits import BatchGroup
from core.request_types import Fault
from core.retry import is_retryable
from core.spec import Item
from core.validation import Rejected
from providers.gemini import answers
from providers.base import ItemOutcome, ResultFormat
from schemas import ErrorInfo

__all__ = ["RESULTS", "outcome", "Wire", "without_model"]


def without_model(params: dict[str, Any]) -> dict[str, Any]:
    """A body as the API takes it: the model is in the URL or the job, not the body."""
    return {name: value for name, value in params.items() if name != "model"} if "model" in params else params


def outcome(line: dict[str, Any]) -> ItemOutcome:
    key = line.get("key", "")
    response = line.get("response")
    if isinstance(response, dict):
        return ItemOutcome(key, response, response.get("usageMetadata"), None)
    error = line.get("error") or {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    kind = str(error.get("status") or (f"http_{code}" if code else "unknown_error"))
    return ItemOutcome(key, None, None, ErrorInfo(type=kind, message=str(error.get("message") or kind)[:2000]),
                       is_retryable(kind, code))


#: A result line: ``{"key", "response"}`` or ``{"key", "error": {"code", "status", "message"}}``.
RESULTS = ResultFormat("key", outcome)


class Wire:
    results = RESULTS
    schema: dict[str, Any] = {"anyOf": [{"required": ["model"]}, {"properties": {"params": {"required": ["model"]}}}]}

    def fields(self, doc: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | Rejected:
        model = doc.get("model") or params.get("model")
        if not isinstance(model, str) or not model.removeprefix("models/") or len(model) > 256 \
                or any(c.isspace() or c in "/:?#" for c in model.removeprefix("models/")):
            return Rejected("missing_model", "model (or params.model) is required for gemini: a Gemini model name "
                            "such as gemini-2.5-flash")
        return {"model": model.removeprefix("models/")}

    def problem(self, endpoint: str | None, fields: dict[str, Any], params: dict[str, Any]) -> str | None:
        fault = _generate_content(params)
        return None if fault is None else str(fault)

    def line(self, item: Item) -> bytes:
        return orjson.dumps({"key": item.custom_id, "request": without_model(item.params)})

    def group(self, item: Item) -> BatchGroup:
        return BatchGroup(item.provider, None, item.model)

    def job_fields(self, group: BatchGroup) -> dict[str, Any]:
        return {"model": group.model}

    def sync_path(self, item: Item) -> str:
        return f"/v1beta/models/{item.model}:generateContent"

    def answer_schema(self, item: Item) -> dict[str, Any] | None:
        return answers.answer_schema(item.endpoint, item.params)

    def reading(self, response: dict[str, Any]) -> Reading | None:
        return answers.reading(response)

    def sync_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return without_model(params)

    def model(self, item: Item) -> str:
        return item.model or ""


def _generate_content(params: Any) -> Fault | None:
    """A ``GenerateContentRequest`` in its REST (camelCase) shape: google-genai's own types are its Python
    (snake_case) shape, so the few fields a batch cannot do without are checked here."""
    contents = params.get("contents")
    if not isinstance(contents, list) or not contents:
        return Fault("must be a non-empty list of {role, parts} objects").at("contents")
    for n, content in enumerate(contents):
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not all(isinstance(part, dict) for part in parts):
            return Fault("must be a list of objects such as {\"text\": ...}").at("parts").at(str(n)).at("contents")
    for name in ("generationConfig", "systemInstruction", "toolConfig", "cachedContent"):
        if name in params and not isinstance(params[name], str if name == "cachedContent" else dict):
            return Fault(f"must be {'a string' if name == 'cachedContent' else 'an object'}").at(name)
    config = params.get("generationConfig") or {}
    if "maxOutputTokens" in config and (isinstance(config["maxOutputTokens"], bool)
                                        or not isinstance(config["maxOutputTokens"], int)):
        return Fault("must be an integer").at("maxOutputTokens").at("generationConfig")
    return None
