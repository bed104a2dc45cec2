"""Turn the bytes of a ``tierline.requests`` message into a work item, or say why not.

Each rejection has a machine-readable ``reason`` (the dead-letter contract) and a
message that tells the producer what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import orjson
import yarl

from core.lanes import wire_of
from core.limits import BEDROCK_INVOCATIONS, LIMITS, OPENAI_DEFAULT_ENDPOINT, BatchGroup, Caps
from core.request_types import MAX_DEPTH, depth_exceeds, problem_in
from schemas import WorkItem

__all__ = ["Accepted", "Rejected", "Request", "validate", "validate_doc", "parse", "parse_json", "too_deep",
           "provider_line", "request_of", "group_of", "without_model", "callback_url_problem", "REASONS",
           "DEADLETTER_REASONS", "MAX_CUSTOM_ID_CHARS"]

REASONS = (
    "invalid_json",
    "not_an_object",
    "missing_custom_id",
    "invalid_custom_id",
    "unknown_provider",
    "invalid_params",
    "missing_model",
    "unsupported_endpoint",
    "unsupported_invocation",
    "invalid_metadata",
    "invalid_reprocess",
    "item_too_large",
    "invalid_routing",
    "too_deep",
)

#: Every reason a dead letter may give: the checks above, and those of the other topics and agents.
DEADLETTER_REASONS = (
    *REASONS,
    "invalid_retry",  # a message on tierline.retry that tierline did not write
    "invalid_async",  # the same on tierline.async
    "unprocessable",  # a step of handling the item raised: the exception's type and message
    "crashed_worker",  # the worker died at this message again and again: set aside so the partition moves on
)

#: No provider takes longer ids (OpenAI's and Bedrock's are up to 512 characters).
MAX_CUSTOM_ID_CHARS = 512


@dataclass(slots=True)  # not frozen: made per item, and a frozen __init__ takes 5 times as long
class Accepted:
    """A valid item, its batch group and its line in the provider's batch input."""

    item: WorkItem
    group: BatchGroup
    line: bytes


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input that can never be processed."""

    reason: str
    message: str


def provider_line(item: WorkItem) -> bytes:
    """The item as one line of the provider's batch input (without the newline)."""
    if wire_of(item.provider) == "openai":
        return orjson.dumps(
            {
                "custom_id": item.custom_id,
                "method": "POST",
                "url": item.endpoint or OPENAI_DEFAULT_ENDPOINT,
                "body": item.params,
            }
        )
    if item.provider == "bedrock":
        return orjson.dumps({"recordId": item.custom_id, "modelInput": item.params})
    if item.provider == "gemini":  # the job names the model; a request line names none
        return orjson.dumps({"key": item.custom_id, "request": without_model(item.params)})
    return orjson.dumps({"custom_id": item.custom_id, "params": item.params})


def without_model(params: dict[str, Any]) -> dict[str, Any]:
    """A Gemini body as its API takes it: the model is in the URL or the job, not the body."""
    return {name: value for name, value in params.items() if name != "model"} if "model" in params else params


class Request(NamedTuple):
    custom_id: str
    params: dict[str, Any]
    endpoint: str | None


def request_of(line: dict[str, Any]) -> Request:
    """The item's request back from a line ``provider_line`` made."""
    if "recordId" in line:
        return Request(line["recordId"], line["modelInput"], None)
    if "key" in line:
        return Request(line["key"], line["request"], None)
    if "body" in line:
        return Request(line["custom_id"], line["body"], line["url"])
    return Request(line["custom_id"], line["params"], None)


def group_of(item: WorkItem) -> BatchGroup:
    if wire_of(item.provider) == "openai":
        return BatchGroup(item.provider, item.endpoint or OPENAI_DEFAULT_ENDPOINT, item.params["model"])
    if item.provider == "bedrock":
        return BatchGroup("bedrock", BEDROCK_INVOCATIONS[item.invocation or "invoke"], item.model)
    if item.provider == "gemini":
        return BatchGroup("gemini", None, item.model)
    return BatchGroup(item.provider)


_TIERS = ("auto", "realtime", "async", "flex", "batch")
_PRIORITIES = (None, "cost", "responsiveness")


_ROUTING_FIELDS = ("tier", "user_waiting", "deadline", "max_latency_s", "priority", "bulk", "callback_url")


def _routing(doc: dict[str, Any]) -> dict[str, Any] | Rejected:
    """The routing fields, checked; only those given."""
    if doc.keys().isdisjoint(_ROUTING_FIELDS):  # most items name none: one look, not seven
        return {}
    found: dict[str, Any] = {}

    def bad(text: str) -> Rejected:
        return Rejected("invalid_routing", text)

    if (tier := doc.get("tier", "auto")) not in _TIERS:
        return bad(f"tier {tier!r} is not one of: {', '.join(_TIERS)}")
    if (priority := doc.get("priority")) not in _PRIORITIES:
        return bad(f"priority {priority!r} is not cost or responsiveness")
    for name in ("user_waiting", "bulk"):
        if not isinstance(doc.get(name, False), bool):
            return bad(f"{name} must be true or false")
    for name in ("deadline", "max_latency_s"):
        value = doc.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            return bad(f"{name}, when given, must be a number of seconds (deadline: Unix time)")
    url = doc.get("callback_url")
    if url is not None and (problem := callback_url_problem(url)):
        return bad(problem)
    for name in _ROUTING_FIELDS:
        if name in doc and doc[name] is not None:
            found[name] = float(doc[name]) if name in ("deadline", "max_latency_s") else doc[name]
    return found


def callback_url_problem(url: Any) -> str | None:
    """Why ``url`` cannot be a callback address (its shape only: where it points is checked at delivery)."""
    if not (isinstance(url, str) and url.startswith(("http://", "https://"))) or len(url) > 2048:
        return "callback_url, when given, must be an http:// or https:// URL of at most 2048 characters"
    try:
        host = yarl.URL(url).host
    except ValueError as exc:
        return f"callback_url {url[:80]!r} is not a valid URL: {exc}"
    return None if host else f"callback_url {url[:80]!r} names no host"


def _bedrock(doc: dict[str, Any]) -> dict[str, Any] | Rejected:
    """A Bedrock item's model (beside its body, which names none) and invocation."""
    model = doc.get("model")
    if not isinstance(model, str) or not model or len(model) > 2048 or any(c.isspace() for c in model):
        return Rejected("missing_model", "model is required for bedrock: a Bedrock model id (such as "
                        "anthropic.claude-3-5-haiku-20241022-v1:0) or an inference-profile ARN")
    invocation = doc.get("invocation") or "invoke"
    if invocation not in BEDROCK_INVOCATIONS:
        return Rejected("unsupported_invocation", f"invocation {invocation!r} is not one of: "
                        f"{', '.join(BEDROCK_INVOCATIONS)} (params is then an InvokeModel or a Converse body)")
    return {"model": model, "invocation": invocation}


def _gemini(doc: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | Rejected:
    """A Gemini item's model: ``model`` beside its body, or the body's own ``model`` (``models/`` optional)."""
    model = doc.get("model") or params.get("model")
    if not isinstance(model, str) or not model.removeprefix("models/") or len(model) > 256 \
            or any(c.isspace() or c in "/:?#" for c in model.removeprefix("models/")):
        return Rejected("missing_model", "model (or params.model) is required for gemini: a Gemini model name "
                        "such as gemini-2.5-flash")
    return {"model": model.removeprefix("models/")}


def parse(value: bytes | None) -> Any:
    """A message value as JSON, or the Rejected that says why it is not acceptable JSON."""
    doc = parse_json(value)
    return doc if isinstance(doc, Rejected) else too_deep(value, doc) or doc


def parse_json(value: bytes | None) -> Any:
    """A message value as JSON, or why it is not JSON; its depth is ``too_deep``'s to judge."""
    try:
        return orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        return Rejected("invalid_json", f"value is not JSON: {exc}")


def too_deep(value: bytes | None, doc: Any) -> Rejected | None:
    """Why ``doc`` (``value`` parsed) nests too deep for tierline to carry, if it does."""
    # Counting brackets is cheap; the walk is needed only where there are enough of them.
    if value and value.count(b"[") + value.count(b"{") > MAX_DEPTH and depth_exceeds(doc, MAX_DEPTH + 1):
        return Rejected("too_deep", f"the value nests lists and objects more than {MAX_DEPTH} levels deep "
                        "(params and metadata included): tierline accepts at most that")
    return None


def validate(value: bytes | None, caps_for: Callable[[str], Caps]) -> Accepted | Rejected:
    """Check one message value; ``caps_for(provider)`` gives the byte cap an item must fit."""
    doc = parse(value)
    return doc if isinstance(doc, Rejected) else validate_doc(doc, caps_for)


def validate_doc(doc: Any, caps_for: Callable[[str], Caps]) -> Accepted | Rejected:
    """Check a parsed work item (within the depth limit, as ``parse`` leaves it)."""
    if not isinstance(doc, dict):
        return Rejected("not_an_object", f"value must be a JSON object, got {type(doc).__name__}")

    custom_id = doc.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return Rejected("missing_custom_id", "custom_id is required and must be a non-empty string")
    if len(custom_id) > MAX_CUSTOM_ID_CHARS or not custom_id.isprintable():
        return Rejected("invalid_custom_id", f"custom_id must be at most {MAX_CUSTOM_ID_CHARS} printable "
                        "characters (no control characters or line breaks)")

    provider = doc.get("provider")
    limits = LIMITS.get(provider) if isinstance(provider, str) else None
    if limits is None:
        known = ", ".join(sorted(LIMITS))
        return Rejected("unknown_provider", f"provider {provider!r} is not one of: {known}")
    if not limits.custom_id.fullmatch(custom_id):
        return Rejected(
            "invalid_custom_id",
            f"custom_id {custom_id[:80]!r} is not accepted by {provider}: "
            f"it must match {limits.custom_id.pattern}",
        )

    params = doc.get("params")
    if not isinstance(params, dict):
        return Rejected("invalid_params", "params must be an object: the provider's request body")
    bedrock = _bedrock(doc) if provider == "bedrock" else {}
    if isinstance(bedrock, Rejected):
        return bedrock
    gemini = _gemini(doc, params) if provider == "gemini" else {}
    if isinstance(gemini, Rejected):
        return gemini
    model = params.get("model")
    if not (bedrock or gemini) and (not isinstance(model, str) or not model):
        return Rejected("missing_model", "params.model is required")

    endpoint = doc.get("endpoint")
    if limits.endpoints is None or bedrock:
        endpoint = None
    elif endpoint is None:
        endpoint = limits.default_endpoint or OPENAI_DEFAULT_ENDPOINT
    elif endpoint not in limits.endpoints:
        allowed = ", ".join(sorted(limits.endpoints))
        return Rejected("unsupported_endpoint", f"endpoint {endpoint!r} is not one of: {allowed}")

    metadata = doc.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        return Rejected("invalid_metadata", "metadata must be an object when given")

    reprocess = doc.get("reprocess")
    if reprocess is not None and not (isinstance(reprocess, str) and 0 < len(reprocess) <= 64
                                      and reprocess.isprintable()):
        return Rejected("invalid_reprocess", "reprocess, when given, must be a name of 1 to 64 printable characters")

    kind = BEDROCK_INVOCATIONS[bedrock["invocation"]] if bedrock else endpoint
    if (problem := problem_in(wire_of(str(provider)), kind, bedrock.get("model"), params)) is not None:
        return Rejected("invalid_params", f"params do not fit {provider}'s request type: {problem}")

    routing = _routing(doc)
    if isinstance(routing, Rejected):
        return routing
    assert isinstance(provider, str)  # LIMITS knows it
    item = WorkItem(custom_id=custom_id, provider=provider, params=params, endpoint=endpoint, metadata=metadata,
                    reprocess=reprocess, **routing, **bedrock, **gemini)
    line = provider_line(item)
    max_bytes = caps_for(provider).max_bytes
    if len(line) + 1 > max_bytes:
        return Rejected(
            "item_too_large",
            f"the item is {len(line) + 1} bytes in the batch input, "
            f"more than a whole {provider} batch may hold ({max_bytes} bytes)",
        )
    return Accepted(item, group_of(item), line)
