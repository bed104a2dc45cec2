"""Prompt caching as the providers report it in usage; pure, clock injected.

Anthropic caches a prompt's prefix up to its last ``cache_control`` breakpoint (system blocks and
message content blocks), if that prefix is at least the model's minimum (1,024 tokens; 2,048 for
Claude Haiku 3 and 3.5; 4,096 for Haiku 4.5): the first request writes it
(``cache_creation_input_tokens``, and ``cache_creation`` split by a five-minute or one-hour ``ttl``),
a later one within the ttl reads it (``cache_read_input_tokens``), and ``input_tokens`` counts only
the rest. OpenAI caches on its own: a prompt whose prefix (all but the last message) is at least
1,024 tokens and was seen within five minutes has that prefix cached, in steps of 128 tokens
(``prompt_tokens_details.cached_tokens``, counted within ``prompt_tokens``). Tool definitions are
left out of the prefix here; otherwise the counts follow the documented rules.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

__all__ = ["Cached", "PromptCache", "tokens"]

Json = dict[str, Any]

FIVE_MINUTES, ONE_HOUR = 300.0, 3600.0
OPENAI_MINIMUM, OPENAI_STEP = 1024, 128


class Cached(NamedTuple):
    """Of a request's input tokens: written to the cache (five-minute, one-hour), and read from it."""

    write: int = 0
    write_1h: int = 0
    read: int = 0


def tokens(text: str) -> int:
    """About four characters a token, the providers' own rule of thumb: the emulator's one count."""
    return max(1, (len(text) + 3) // 4)


@dataclass
class PromptCache:
    clock: Callable[[], float] = time.monotonic
    _until: dict[str, float] = field(default_factory=dict)  # prefix hash → when it expires

    def anthropic(self, params: Json) -> Cached:
        prefix, ttl = _anthropic_prefix(params)
        size = tokens(prefix) if prefix else 0
        if not prefix or size < _anthropic_minimum(str(params.get("model", ""))):
            return Cached()
        if self._hit(f"{params.get('model')}\x00{prefix}", ttl):
            return Cached(read=size)
        return Cached(write_1h=size) if ttl == ONE_HOUR else Cached(write=size)

    def openai(self, body: Json) -> int:
        """The cached tokens of a chat request's prompt."""
        messages = body.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            return 0
        prefix = "".join(_text(message.get("content")) for message in messages[:-1] if isinstance(message, dict))
        size = tokens(prefix) if prefix else 0
        if size < OPENAI_MINIMUM:
            return 0
        return size // OPENAI_STEP * OPENAI_STEP if self._hit(f"{body.get('model')}\x00{prefix}", FIVE_MINUTES) else 0

    def _hit(self, text: str, ttl: float) -> bool:
        """Whether this prefix is cached now; either way it is cached for ``ttl`` from now (a read refreshes)."""
        key, now = hashlib.sha256(text.encode()).hexdigest(), self.clock()
        hit = self._until.get(key, 0.0) > now
        self._until[key] = now + ttl
        return hit


def _anthropic_minimum(model: str) -> int:
    if "haiku-4-5" in model:
        return 4096
    return 2048 if "haiku" in model else 1024


def _anthropic_prefix(params: Json) -> tuple[str, float]:
    """The text up to and including the last block marked ``cache_control``, and that mark's ttl."""
    blocks: list[Json | str] = []
    system = params.get("system")
    blocks.extend(system if isinstance(system, list) else [system] if isinstance(system, str) else [])
    for message in params.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        blocks.extend(content if isinstance(content, list) else [content] if isinstance(content, str) else [])
    marked = [i for i, block in enumerate(blocks) if isinstance(block, dict) and isinstance(block.get("cache_control"),
                                                                                             dict)]
    if not marked:
        return "", 0.0
    last = blocks[marked[-1]]
    assert isinstance(last, dict)
    ttl = ONE_HOUR if last["cache_control"].get("ttl") == "1h" else FIVE_MINUTES
    return "".join(_text(block) for block in blocks[:marked[-1] + 1]), ttl


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    return ""
