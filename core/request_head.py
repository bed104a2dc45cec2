"""The run a request names (its custom_id and re-run name), read from its bytes without the rest of it.

Most of a replay, and of a new consumer group's re-read, is requests that already succeeded, and deciding
that needs two fields of each. A whole parse builds every message and content block only to look at them:
msgspec decodes the top level into a struct of the two and steps over the rest in C, in a third of the
time (0.4 µs against orjson's 1.4 for a 220-byte item).

It checks the JSON's syntax throughout, but not the UTF-8 of the strings it steps over nor whether their
numbers fit a float: a record wrong only there is taken for the run it names. Callers use the head to skip a
done run's record, which is skipped before any other check anyway, and parse everything else whole.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["RequestHead", "head_of", "head_in"]


class RequestHead(msgspec.Struct, gc=False):  # two strings: nothing for the cycle collector to follow
    """What a request's top level says of its run."""

    custom_id: str = ""
    reprocess: str | None = None


_decode = msgspec.json.Decoder(RequestHead).decode


def head_of(value: bytes | None) -> RequestHead | None:
    """A request's head, or None where it does not say: the value is not a JSON object, its custom_id is
    not a non-empty string, its re-run name is not a non-empty string or null, or it nests too deep for
    the decoder. A full parse then decides."""
    try:
        head = _decode(value or b"")
    except (msgspec.DecodeError, RecursionError):
        return None
    return head if head.custom_id and head.reprocess != "" else None


def head_in(doc: Any) -> RequestHead | None:
    """The head of a request already parsed whole, by ``head_of``'s rules: for a value whose head the quick
    read could not take."""
    if not isinstance(doc, dict):
        return None
    custom_id, reprocess = doc.get("custom_id"), doc.get("reprocess")
    if not isinstance(custom_id, str) or not custom_id or not (reprocess is None or isinstance(reprocess, str)
                                                               and reprocess):
        return None
    return RequestHead(custom_id, reprocess)
