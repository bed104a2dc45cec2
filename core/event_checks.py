"""Check what tierline reads back from its own topics, ``tierline.retry`` and ``tierline.async``.

Anyone who can write a topic can write these, so a message is held to what tierline
itself writes, as strictly as a request: the known fields only, each of its type, and
the work item inside it checked again (``core.validation``). A message that fails is a
dead letter ``invalid_retry`` / ``invalid_async`` naming the field at fault.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from core.spec import Catalogue
from core.validation import Accepted, Rejected, parse, validate_doc
from schemas import ASYNC_TIERS, AsyncItem, ErrorInfo, RetryItem

__all__ = ["check_retry", "check_async", "CheckedRetry", "ASYNC_TIERS"]

MAX_ATTEMPT = 1_000

_WORK_FIELDS = ("custom_id", "provider", "params", "endpoint", "metadata", "reprocess", "model", "invocation",
                "tier", "deadline", "callback_url", "answer_schema")


class CheckedRetry(NamedTuple):
    """A retry event, and its item as the request checks accepted it."""

    retry: RetryItem
    accepted: Accepted


def check_retry(value: bytes | None, catalogue: Catalogue,
                partitions: int) -> CheckedRetry | Rejected:
    """A retry event and its item, checked; or why it is not one tierline wrote."""
    doc = _object(value, "invalid_retry", "retry event", RetryItem.__slots__)
    if isinstance(doc, Rejected):
        return doc
    problem = (_required(doc, ("custom_id", "provider", "params", "metadata", "attempt", "not_before",
                               "source_partition"))
               or _count(doc, "attempt", 1, MAX_ATTEMPT)
               or _number(doc, "not_before", required=True)
               or _number(doc, "deadline")
               or _count(doc, "source_partition", 0, partitions - 1)
               or _error(doc.get("previous_error"))
               or _words(doc, "route"))
    if problem:
        return Rejected("invalid_retry", problem)
    accepted = _work(doc, catalogue, "invalid_retry")
    if isinstance(accepted, Rejected):
        return accepted
    error = doc.get("previous_error")
    previous = ErrorInfo(type=error["type"], message=error["message"]) if error else None
    retry = RetryItem(**{**doc, "previous_error": previous, "endpoint": accepted.item.endpoint,
                         "metadata": accepted.item.metadata})
    return CheckedRetry(retry, accepted)


def check_async(value: bytes | None, catalogue: Catalogue, partitions: int) -> AsyncItem | Rejected:
    """An item routed to the async-queue agent, checked; or why it is not one tierline wrote."""
    doc = _object(value, "invalid_async", "async item", AsyncItem.__slots__)
    if isinstance(doc, Rejected):
        return doc
    problem = (_required(doc, ("custom_id", "provider", "params", "metadata", "tier", "route", "arrived_at",
                               "source_partition"))
               or (None if doc["tier"] in ASYNC_TIERS else
                   f"tier {doc['tier']!r} is not one of: {', '.join(ASYNC_TIERS)}")
               or _words(doc, "route")
               or _number(doc, "arrived_at", required=True)
               or _count(doc, "source_partition", 0, partitions - 1))
    if problem:
        return Rejected("invalid_async", problem)
    accepted = _work(doc, catalogue, "invalid_async")
    if isinstance(accepted, Rejected):
        return accepted
    item = accepted.item
    return AsyncItem(custom_id=item.custom_id, provider=item.provider, params=item.params, endpoint=item.endpoint,
                     metadata=item.metadata, reprocess=item.reprocess, tier=doc["tier"], route=doc["route"],
                     arrived_at=float(doc["arrived_at"]), source_partition=doc["source_partition"],
                     deadline=item.deadline, callback_url=item.callback_url, model=item.model,
                     invocation=item.invocation, answer_schema=item.answer_schema)


def _object(value: bytes | None, reason: str, what: str, fields: tuple[str, ...]) -> dict[str, Any] | Rejected:
    doc = parse(value)
    if isinstance(doc, Rejected):
        return Rejected(reason, f"not a tierline {what}: {doc.message}")
    if not isinstance(doc, dict):
        return Rejected(reason, f"not a tierline {what}: the value must be a JSON object, got {type(doc).__name__}")
    unknown = sorted(set(doc) - set(fields))
    if unknown:
        return Rejected(reason, f"not a tierline {what}: unknown field {unknown[0]!r}")
    return doc


def _work(doc: dict[str, Any], catalogue: Catalogue, reason: str) -> Accepted | Rejected:
    """The work item inside: checked as a request would be."""
    work = {name: doc[name] for name in _WORK_FIELDS if doc.get(name) is not None}
    verdict = validate_doc(work, catalogue)
    if isinstance(verdict, Rejected):
        return Rejected(reason, f"{verdict.reason}: {verdict.message}")
    return verdict


def _required(doc: dict[str, Any], names: tuple[str, ...]) -> str | None:
    missing = [name for name in names if doc.get(name) is None]
    return f"{missing[0]} is required" if missing else None


def _count(doc: dict[str, Any], name: str, least: int, most: int) -> str | None:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        return f"{name} must be a whole number from {least} to {most}, got {value!r}"
    return None


def _number(doc: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return f"{name} must be a Unix time in seconds, got {value!r}"
    return None


def _words(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return None
    return f"{name} must be a list of strings"


def _error(value: Any) -> str | None:
    if value is None or (isinstance(value, dict) and set(value) == {"type", "message"}
                         and all(isinstance(v, str) for v in value.values())):
        return None
    return "previous_error must be null or an object of two strings, type and message"
