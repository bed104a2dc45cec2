"""Whether a provider's answer is the answer asked for: parsed and checked against its JSON Schema, not cut off
at the token limit, not empty; pure.

Each provider's wire reads its own answers into a ``Reading`` (its text, or a forced tool's input, and whether
the model stopped at the limit) and finds the schema a request asks for (``Wire.answer_schema``); ``judge``
holds every tier to the same rules. A failure is retried on its own like any other (``TIERLINE_MAX_ATTEMPTS``):
none of the providers guarantees a schema in batch mode, and a second sample often fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import orjson
from jsonschema import exceptions, validators
from jsonschema.protocols import Validator

from schemas import ErrorInfo

__all__ = ["Reading", "Judged", "ANSWER_FAILURES", "judge", "judge_answer", "schema_problem", "validator_of",
           "NOT_GIVEN"]

Json = dict[str, Any]

#: The failures ``judge`` gives, each an item's own (its batch-mates are not touched) and retried.
ANSWER_FAILURES = ("invalid_answer", "truncated", "empty_answer")
#: A reading whose answer is text to parse, not a value the provider parsed already.
NOT_GIVEN: Any = object()
_FENCE = ("```json", "```JSON", "```")


@dataclass(slots=True)  # not frozen: made per answer, and a frozen __init__ takes 5 times as long
class Reading:
    """A provider's answer as its wire reads it.

    ``text`` is the answer's text (its text parts joined); ``value`` a forced tool's input, which the provider
    gave as JSON already; ``other`` says it holds something that is neither (a tool call, a refusal, an
    image), so an answer without text is not empty; ``truncated`` that the model stopped at the token limit.
    """

    text: str
    truncated: bool = False
    value: Any = NOT_GIVEN
    other: bool = False

    @property
    def empty(self) -> bool:
        return self.value is NOT_GIVEN and not self.other and not self.text.strip()


@dataclass(frozen=True, slots=True)
class Judged:
    """Exactly one of: the answer (parsed, when checked against a schema; else None), or why it is no answer."""

    answer: Any = None
    error: ErrorInfo | None = None


_OK = Judged()


def judge_answer(read: Callable[[Json], Reading | None], response: Any, schema: Json | None,
                 truncated_fails: bool) -> Judged:
    """The verdict on a successful response, read by its provider's wire (``read``). A response that is not an
    object is not judged here (it is no result at all); one the wire cannot read fails only if it had to fit a
    schema: whatever a provider sends, no exception leaves here to fail the item's batch-mates."""
    if not isinstance(response, dict):
        return _OK
    try:
        reading = read(response)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        if schema is None:
            return _OK
        return Judged(error=ErrorInfo(type="invalid_answer", message=f"the answer cannot be read: {exc!r}"[:300]))
    return judge(reading, schema, truncated_fails)


def judge(reading: Reading | None, schema: Json | None, truncated_fails: bool) -> Judged:
    """The verdict on one answer. ``reading`` None: an answer that is not text (an embedding), always fine.
    An empty answer always fails (whether or not the model stopped at the limit, which it did when it thought
    its whole budget away); a truncated one when a schema is asked for (it cannot parse) or ``truncated_fails``
    says so."""
    if reading is None:
        return _OK
    if reading.empty:
        return Judged(error=ErrorInfo(type="empty_answer", message="the answer holds no text (a reasoning model may "
                                      "have spent its whole token budget thinking): raise max_tokens"))
    if reading.truncated and (schema is not None or truncated_fails):
        return Judged(error=ErrorInfo(type="truncated", message="the model stopped at the token limit before the "
                                      "answer ended: raise max_tokens, or ask for less"))
    if schema is None:
        return _OK
    value = reading.value
    if value is NOT_GIVEN:
        try:
            value = orjson.loads(_unfenced(reading.text))
        except orjson.JSONDecodeError as exc:
            return Judged(error=ErrorInfo(type="invalid_answer", message=f"the answer is not JSON ({exc}): "
                                          f"{reading.text[:120]!r}"))
    if (problem := _violation(validator_of(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)), value)) is not None:
        return Judged(error=ErrorInfo(type="invalid_answer", message=problem))
    return Judged(answer=value)


def _unfenced(text: str) -> str:
    """The JSON inside one Markdown code fence, as some models wrap it; the text itself otherwise."""
    stripped = text.strip()
    if stripped.endswith("```"):
        for fence in _FENCE:
            if stripped.startswith(fence):
                return stripped[len(fence):-3]
    return stripped


def _violation(validator: Validator, value: Any) -> str | None:
    """The answer's most telling breach of its schema: where (a JSON path), which rule, and what it says."""
    error = exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    return f"the answer does not fit its schema at {error.json_path}: {error.message[:300]} (rule {error.validator})"


@lru_cache(maxsize=256)
def validator_of(schema: bytes) -> Validator:
    """A validator of the schema (canonical JSON bytes), made once: the dialect its ``$schema`` names, else the
    latest. Raises ``SchemaError`` for a schema that is not one."""
    doc = orjson.loads(schema)
    cls = validators.validator_for(doc)
    cls.check_schema(doc)
    return cls(doc)


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot check answers, if it cannot: not an object, or not a valid JSON Schema."""
    if not isinstance(schema, dict):
        return "must be a JSON Schema: an object"
    try:
        validator_of(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    except exceptions.SchemaError as exc:
        return f"is not a valid JSON Schema at {exc.json_path}: {exc.message[:200]}"
    except (TypeError, orjson.JSONEncodeError) as exc:
        return f"is not a valid JSON Schema: {exc}"
    return None
