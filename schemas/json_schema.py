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
from typing import TYPE_CHECKING, Any, Union

import orjson

from core.validation import DEADLETTER_REASONS
from providers.bedrock.wire import INVOCATIONS
from providers.catalogue import BUILT_IN
from providers.openai.wire import ENDPOINTS, Wire
from schemas import events

if TYPE_CHECKING:
    from core.spec import ProviderSpec

__all__ = ["TOPIC_RECORDS", "FIELD_DOCS", "schema_for", "write_all", "SCHEMA_DIR"]

SCHEMA_DIR = Path(__file__).parent / "json"

#: Public topic (short name) → the record its values are.
TOPIC_RECORDS: dict[str, type] = {
    "requests": events.WorkItem,
    "retry": events.RetryItem,
    "async": events.AsyncItem,
    "results": events.ResultEvent,
    "failures": events.FailureEvent,
    "deadletter": events.DeadLetter,
    "alerts": events.Alert,
}

#: What the dataclasses cannot say by their types: the request's accepted values.
_CONSTRAINTS: dict[str, dict[str, dict[str, Any]]] = {
    "requests": {
        "custom_id": {"minLength": 1, "maxLength": 512},
        # A built-in provider (its names are filled in below), or a lane the deployment declares
        # (TIERLINE_PROVIDERS_FILE, providers.lanes).
        "provider": {"anyOf": [{"pattern": "^[a-z][a-z0-9-]{0,31}$"}]},
        "endpoint": {"anyOf": [{"enum": sorted(ENDPOINTS) + [None]}, {"pattern": "^/"}]},
        "reprocess": {"minLength": 1, "maxLength": 64},
        "tier": {"enum": list(events.ASKED_TIERS)},
        "priority": {"enum": ["cost", "responsiveness", None]},
        "deadline": {"minimum": 0},
        "max_latency_s": {"minimum": 0},
        "callback_url": {"pattern": "^https?://"},
        "invocation": {"enum": [*INVOCATIONS, None]},
    },
    "results": {"tier": {"enum": list(events.TIERS)}},
    "failures": {"tier": {"enum": list(events.TIERS)}},
    "async": {"tier": {"enum": list(events.ASYNC_TIERS)}},
    "deadletter": {"reason": {"enum": list(DEADLETTER_REASONS)}},
    "alerts": {"kind": {"enum": list(events.ALERT_KINDS)}},
}


#: What each field means, for whoever codes against the schemas in another language.
FIELD_DOCS: dict[str, str] = {
    "custom_id": "The item's id, chosen by the producer; also the message key. Idempotency is keyed on it: "
                 "an id that already succeeded is not processed again.",
    "provider": "Which provider runs the item: anthropic, openai, bedrock, gemini, or a lane the deployment "
                "declares in its providers file (groq, together, azure, ...).",
    "params": "The provider's own request body (Anthropic Messages or the OpenAI endpoint's, model included; "
              "for bedrock the model's InvokeModel body, or a Converse body; for gemini a GenerateContentRequest, "
              "its model here or in model).",
    "endpoint": "OpenAI and declared lanes: the endpoint the body is for; null means /v1/chat/completions "
                "(a declared lane's first endpoint).",
    "metadata": "The producer's own object, copied unchanged onto every event about the item.",
    "reprocess": "Names a deliberate re-run (tierline replay --reprocess NAME): the item runs again once per "
                 "name even if it succeeded before; null for ordinary work.",
    "attempt": "Which attempt this is, from 1.",
    "not_before": "Unix time in seconds before which the item must not be submitted again.",
    "source_partition": "The requests partition the item first arrived on; every event about it goes to "
                        "this partition number.",
    "previous_error": "What made the previous attempt fail.",
    "batch_id": "The provider's batch id (msgbatch_..., batch_..., batches/...); null when no batch was created, and "
                "on the realtime and async tiers, which make no batches.",
    "response": "The provider's response body for the item, as the provider returned it.",
    "answer_schema": "A JSON Schema the answer must fit, when the request's own response format or forced tool "
                     "does not say it. A checked answer that does not fit, is cut off at the token limit or is "
                     "empty fails (invalid_answer, truncated, empty_answer) and is retried.",
    "answer": "The answer parsed as JSON, when it was checked against a JSON Schema (answer_schema, or the "
              "request's response format or forced tool); null otherwise.",
    "usage": "The provider's token usage for the item, in its own fields (input_tokens/output_tokens, "
             "prompt_tokens/completion_tokens, or Gemini's usageMetadata).",
    "tier": "The tier that ran the item: batch or flex (half price), async or realtime (full price). On a request: "
            "the tier asked for, or auto (the default) for the router to choose.",
    "model": "On a bedrock request: the Bedrock model id or inference-profile ARN; on a gemini one, the model "
             "(or in params.model); the other providers name it in params. On a result: the model that answered.",
    "invocation": "Bedrock only: invoke (the default; params are the model's InvokeModel body) or converse "
                  "(params are a Converse request body).",
    "cost_usd": "What the item cost in US dollars: its usage at the price table's prices for its tier. On a "
                "failure, what an answer refused (invalid_answer, truncated, empty_answer) was billed.",
    "realtime_usd": "What the same tokens cost at realtime (full) prices; minus cost_usd, the saving.",
    "error": "What went wrong, in the provider's words where it gave any.",
    "type": "The kind of error: the provider's error type, or tierline's (batch_rejected, missing_result, "
            "batch_cancelled, provider_unavailable).",
    "message": "A sentence for a person.",
    "retryable": "Whether the cause is passing (rate limit, overload, expiry) rather than the request itself.",
    "final": "True when no further attempt will be made; false when the item is on its way back through retry.",
    "reason": "Why the message can never be processed, one of the listed codes.",
    "topic": "The topic the message was read from.",
    "partition": "Its partition.",
    "offset": "Its offset.",
    "value_truncated": "True when the value was too large to keep whole here: value_b64 holds its first bytes.",
    "key_b64": "Its key, base64, byte for byte; null when it had none.",
    "value_b64": "Its value, base64, byte for byte: fix it and publish it again.",
    "kind": "What to look at: stalled (no progress for a long time), expired (past the provider's window; "
            "tierline cancelled it and retries the rest), results_at_risk (results not downloaded and about "
            "to be deleted by the provider), provider_refused (a batch refused for the account's sake: a key, a "
            "permission, credit), queue_full (the provider's queue for the model was full again and again: "
            "the items wait, nothing failed), batch_not_found (the provider answered 404 for a batch past "
            "TIERLINE_NOT_FOUND_GRACE_S: its items were retried), unexpected_results (result lines for "
            "custom_ids not in the batch, or seen twice, were ignored), billed_twice (items of the batch had "
            "already succeeded in another batch: billed again, their results not emitted twice), submit_failed, "
            "poll_failed, settle_failed (submitting, polling or settling the batch failed in tierline's own code: "
            "tried again with a growing wait, nothing failed), budget_spent (the daily budget has no room for the "
            "async and flex tiers' calls: they wait, nothing failed; batch_key is calls).",
    "batch_key": "tierline's own name of the batch (tierline status and tierline cancel take it).",
    "user_waiting": "Someone is watching the screen for this answer: the realtime tier.",
    "deadline": "Unix time in seconds after which the result is of no use; the router picks a tier that "
                "meets it, and never the batch tier if it cannot.",
    "max_latency_s": "How many seconds after publishing the result may arrive (a latency tolerance).",
    "priority": "What matters more when nobody is waiting: cost (batch, half price) or responsiveness "
                "(async, minutes, full price).",
    "bulk": "Part of a bulk volume: a hint for the batch tier.",
    "callback_url": "Async tier: where the result is POSTed when done, signed (Tierline-Signature header).",
    "route": "Why the item went to its tier, in words: the router's reasons.",
    "arrived_at": "Unix time in seconds its request was published; the tier's SLA counts from it.",
    "at": "Unix time in seconds of the event.",
    "seconds": "How long the condition has lasted, where it has a duration.",
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
        given = schema["properties"]["provider"]
        schema["properties"]["provider"] = {**given, "anyOf": [{"enum": [spec.name for spec in _built_in()]},
                                                               *given["anyOf"]]}
        schema["allOf"] = _per_provider()
    return schema


def _built_in() -> list[ProviderSpec]:
    from streams.settings import Settings  # the defaults: the schema is the same for every deployment

    return [make(Settings()) for make in BUILT_IN]


def _per_provider() -> list[dict[str, Any]]:
    """What each built-in provider's requests need beyond the rest (where the model is named, which custom_ids
    it takes); a declared lane's, as OpenAI's."""
    rules = []
    for spec in _built_in():
        then = dict(spec.wire.schema)
        if spec.limits.custom_id.pattern != _ANY_ID:  # fewer than 512 characters of anything
            then["properties"] = {**then.get("properties", {}),
                                  "custom_id": {"pattern": f"^{spec.limits.custom_id.pattern}$"}}
        rules.append({"if": {"properties": {"provider": {"const": spec.name}}}, "then": then})
    names = [spec.name for spec in _built_in()]
    rules.append({"if": {"properties": {"provider": {"not": {"enum": names}}}}, "then": Wire.schema})
    return rules


_ANY_ID = ".{1,512}"


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
        described = {"description": FIELD_DOCS[f.name]} if f.name in FIELD_DOCS else {}
        properties[f.name] = {**_type(hints[f.name]), **described, **constraints.get(f.name, {})}
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
    if hint is Any:
        return {}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _object(hint, {})
    if origin is dict or hint is dict:
        return {"type": "object"}
    if origin is list:
        [item] = typing.get_args(hint)
        return {"type": "array", "items": _type(item)}
    if origin is typing.Literal:
        return {"type": "string", "enum": list(typing.get_args(hint))}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"no JSON Schema for {hint!r}")


def _first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


if __name__ == "__main__":
    for path in write_all():
        print(path)
