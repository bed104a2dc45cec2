"""Turn the bytes of a ``tierline.requests`` message into a work item, or say why not.

Each rejection has a machine-readable ``reason`` (the dead-letter contract) and a
message that tells the producer what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
import yarl

from core.answers import schema_problem
from core.limits import BatchGroup
from core.request_types import MAX_DEPTH, depth_exceeds
from core.spec import Catalogue
from schemas import ASKED_TIERS, WorkItem

__all__ = ["Accepted", "Rejected", "Request", "validate", "validate_doc", "parse", "parse_json", "too_deep",
           "request_of", "callback_url_problem", "REASONS", "DEADLETTER_REASONS", "MAX_CUSTOM_ID_CHARS"]

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
    "invalid_answer_schema",
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
    #: What its answer must fit: the item's ``answer_schema``, else the one its request asks for (``core.answers``).
    answer_schema: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input that can never be processed."""

    reason: str
    message: str


class Request(NamedTuple):
    custom_id: str
    params: dict[str, Any]
    endpoint: str | None


def request_of(line: dict[str, Any]) -> Request:
    """The item's request back from its line in a batch's input (any provider's wire)."""
    if "recordId" in line:
        return Request(line["recordId"], line["modelInput"], None)
    if "key" in line:
        return Request(line["key"], line["request"], None)
    if "body" in line:
        return Request(line["custom_id"], line["body"], line["url"])
    return Request(line["custom_id"], line["params"], None)


_PRIORITIES = (None, "cost", "responsiveness")


_ROUTING_FIELDS = ("tier", "user_waiting", "deadline", "max_latency_s", "priority", "bulk", "callback_url")


def _routing(doc: dict[str, Any]) -> dict[str, Any] | Rejected:
    """The routing fields, checked; only those given."""
    if doc.keys().isdisjoint(_ROUTING_FIELDS):  # most items name none: one look, not seven
        return {}
    found: dict[str, Any] = {}

    def bad(text: str) -> Rejected:
        return Rejected("invalid_routing", text)

    if (tier := doc.get("tier", "auto")) not in ASKED_TIERS:
        return bad(f"tier {tier!r} is not one of: {', '.join(ASKED_TIERS)}")
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


def validate(value: bytes | None, catalogue: Catalogue) -> Accepted | Rejected:
    """Check one message value against the providers ``catalogue`` knows (each with the byte cap an item must fit)."""
    doc = parse(value)
    return doc if isinstance(doc, Rejected) else validate_doc(doc, catalogue)


def validate_doc(doc: Any, catalogue: Catalogue) -> Accepted | Rejected:
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
    spec = catalogue.get(provider) if isinstance(provider, str) else None
    if spec is None:
        return Rejected("unknown_provider", f"provider {provider!r} is not one of: {', '.join(sorted(catalogue))} "
                        "(more are declared in TIERLINE_PROVIDERS_FILE, or plugged in by TIERLINE_PROVIDER_PLUGINS)")
    limits = spec.limits
    if not limits.custom_id.fullmatch(custom_id):
        return Rejected(
            "invalid_custom_id",
            f"custom_id {custom_id[:80]!r} is not accepted by {provider}: "
            f"it must match {limits.custom_id.pattern}",
        )

    params = doc.get("params")
    if not isinstance(params, dict):
        return Rejected("invalid_params", "params must be an object: the provider's request body")
    fields = spec.wire.fields(doc, params)
    if isinstance(fields, Rejected):
        return fields

    endpoint = doc.get("endpoint")
    if limits.endpoints is None:
        endpoint = None
    elif endpoint is None:
        endpoint = limits.default_endpoint
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

    if (problem := spec.wire.problem(endpoint, fields, params)) is not None:
        return Rejected("invalid_params", f"params do not fit {provider}'s request type: {problem}")

    routing = _routing(doc)
    if isinstance(routing, Rejected):
        return routing
    asked = doc.get("answer_schema")
    if asked is not None and (problem := schema_problem(asked)) is not None:
        return Rejected("invalid_answer_schema", f"answer_schema {problem}")
    item = WorkItem(custom_id=custom_id, provider=spec.name, params=params, endpoint=endpoint, metadata=metadata,
                    reprocess=reprocess, answer_schema=asked, **routing, **fields)
    schema = asked or spec.wire.answer_schema(item)
    if schema is not asked and schema is not None and (problem := schema_problem(schema)) is not None:
        return Rejected("invalid_answer_schema", f"the schema the request asks its answer to fit {problem}")
    line = spec.wire.line(item)
    max_bytes = catalogue.caps(spec.name).max_bytes
    if len(line) + 1 > max_bytes:
        return Rejected(
            "item_too_large",
            f"the item is {len(line) + 1} bytes in the batch input, "
            f"more than a whole {provider} batch may hold ({max_bytes} bytes)",
        )
    return Accepted(item, spec.wire.group(item), line, schema)
