"""What the emulated model does with one request: answer, or fail on purpose.

Faults are chosen by markers in the request text, so tests are deterministic:
``#emulate:errored`` (a non-retryable error), ``#emulate:expired`` (the item
expires with its batch), ``#emulate:flaky`` (a retryable error on the first
attempt of that ``custom_id`` only). ``error_rate`` adds random retryable
faults from a seeded generator. Other markers shape a good answer (``SHAPES``):
``#emulate:tool-use`` (the model calls the request's first tool), ``#emulate:thinking``
(Anthropic: a thinking block with its signature first), ``#emulate:citations``
(Anthropic: the text cites a document), ``#emulate:refusal`` (OpenAI: a refusal, no content).

A request that asks for a JSON Schema (a response format, a forced tool) is answered with JSON that fits it,
unless it misbehaves on purpose (``MISBEHAVIOURS``): ``#emulate:invalid-json`` (JSON that does not fit, or prose
where JSON was asked for), ``#emulate:truncated`` (cut off at the token limit, half written),
``#emulate:empty`` (the whole token budget spent thinking: no text at all), each in its provider's own shape.
"""

from __future__ import annotations

import base64
import hashlib
import random
import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

from emulator.prompt_cache import Cached, PromptCache, tokens
from emulator.structured import Asked, asked_of, broken, instance

__all__ = ["Behaviour", "Outcome", "SHAPES", "MISBEHAVIOURS"]

SHAPES = ("tool-use", "thinking", "citations", "refusal")
MISBEHAVIOURS = ("invalid-json", "truncated", "empty")
#: The token budget of a request that names none, as spent by an answer that is all thinking.
DEFAULT_MAX_TOKENS = 1024

Json = dict[str, Any]


@dataclass(slots=True)  # not frozen: made per request, and a frozen __init__ takes 5 times as long
class Outcome:
    """What happens to one request: ``kind`` is ok, errored, retryable or expired."""

    kind: str
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    message: str = ""
    #: What the answer holds beyond text (``SHAPES``).
    shape: frozenset[str] = frozenset()
    #: Of ``input_tokens``, those written to or read from the prompt cache.
    cached: Cached = Cached()
    #: The model stopped at the token limit (``#emulate:truncated``, ``#emulate:empty``).
    at_limit: bool = False
    #: A forced tool's input (the request forced a tool): the answer is that call.
    tool_input: Any = None
    #: Of ``output_tokens``, those spent thinking.
    reasoning_tokens: int = 0


@dataclass
class Behaviour:
    """Decides each request's outcome; remembers flaky ids across batches."""

    error_rate: float = 0.0
    seed: int = 0
    cache: PromptCache = field(default_factory=PromptCache)
    _flaky_seen: set[str] = field(default_factory=set)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def decide(self, custom_id: str, raw: bytes, body: Json, provider: str = "") -> Outcome:
        """The outcome of one request, given its raw input line and parsed body; an Anthropic or OpenAI
        request's prompt is cached as that provider caches it."""
        if b"#emulate:" in raw:
            if b"#emulate:errored" in raw:
                return Outcome("errored", message="emulated invalid request (#emulate:errored)")
            if b"#emulate:expired" in raw:
                return Outcome("expired")
            if b"#emulate:flaky" in raw and custom_id not in self._flaky_seen:
                self._flaky_seen.add(custom_id)
                return Outcome("retryable", message="emulated overload on first attempt (#emulate:flaky)")
        if self.error_rate and self._rng.random() < self.error_rate:
            return Outcome("retryable", message="emulated random server error (--error-rate)")
        prompt = _prompt_text(body)
        words = prompt.split()
        text = "Answer to: " + " ".join(words[:16]) if words else "Hello."
        marked = frozenset(s for s in (*SHAPES, *MISBEHAVIOURS) if b"#emulate:" + s.encode() in raw) \
            if b"#emulate:" in raw else frozenset()
        cached = (self.cache.anthropic(body) if provider == "anthropic" else
                  Cached(read=self.cache.openai(body)) if provider == "openai" else Cached())
        outcome = Outcome("ok", text, max(tokens(prompt), sum(cached)), tokens(text), shape=marked, cached=cached)
        asked = asked_of(body) if _MAY_ASK.intersection(body) else None
        return outcome if asked is None and not marked else _structured(outcome, body, marked, asked)


#: The request fields a schema may be asked for in (``emulator.structured``): most requests have none of them.
_MAY_ASK = frozenset({"response_format", "text", "output_config", "output_format", "generationConfig", "tool_choice",
                      "toolConfig"})


def _structured(outcome: Outcome, body: Json, marked: frozenset[str], asked: Asked | None) -> Outcome:
    """The answer as the request's schema shapes it, and as it misbehaves on purpose."""
    if asked is not None:
        value = instance(asked.schema) if "invalid-json" not in marked else broken(instance(asked.schema))
        if asked.tool:
            outcome.shape, outcome.tool_input, outcome.text = outcome.shape | {"tool-use"}, value, ""
        else:
            outcome.text = orjson.dumps(value).decode()
    elif "invalid-json" in marked:
        outcome.text = "Sure! Here is what you asked for: " + outcome.text
    if "truncated" in marked:
        outcome.at_limit, outcome.text = True, outcome.text[:max(1, len(outcome.text) // 2)]
        outcome.tool_input = {} if outcome.tool_input is not None else None
    if "empty" in marked:
        budget = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens") \
            or (body.get("generationConfig") or {}).get("maxOutputTokens") or DEFAULT_MAX_TOKENS
        outcome.at_limit, outcome.text, outcome.tool_input = True, "", None
        outcome.shape = outcome.shape - {"tool-use"}
        outcome.output_tokens = outcome.reasoning_tokens = budget if isinstance(budget, int) else DEFAULT_MAX_TOKENS
    else:
        outcome.output_tokens = tokens(outcome.text) if outcome.text else tokens(orjson.dumps(outcome.tool_input)
                                                                               .decode())
    return outcome


def _prompt_text(body: Json) -> str:
    """The text a model would read: messages' contents, a responses ``input`` or an embedding ``input``."""
    parts: list[str] = []
    system = body.get("system")
    if isinstance(system, str):
        parts.append(system)
    elif isinstance(system, list):  # Anthropic's system blocks
        parts.extend(b.get("text", "") for b in system if isinstance(b, dict))
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(b.get("text", "") for b in content if isinstance(b, dict))
    for content in [body.get("systemInstruction"), *(body.get("contents") or ())]:  # Gemini's
        blocks = content.get("parts") if isinstance(content, dict) else None
        if isinstance(blocks, list):
            parts.extend(b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))
    data = body.get("input")
    if isinstance(data, str):
        parts.append(data)
    elif isinstance(data, list):
        parts.extend(x if isinstance(x, str) else str(x.get("content", "")) for x in data if x)
    return " ".join(parts)


def embedding(text: str, dimensions: int = 8) -> list[float]:
    """A small deterministic vector derived from the text."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round((b - 128) / 128, 6) for b in digest[:dimensions]]


def embedding_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def prompt_of(body: Json) -> str:
    return _prompt_text(body)
