"""Admission control: how many tokens may wait at a provider for one model, and whether a batch fits.

OpenAI limits the tokens an organisation may have enqueued per model; a batch that would
pass the limit is accepted, then fails. ``TIERLINE_ENQUEUED_TOKEN_LIMITS`` gives the limits
(``provider/model=TOKENS``, ``provider/*`` for every model of a provider), and a batch is
created only when its estimated input tokens fit beside those of the model's batches still
at the provider. A batch larger than the limit on its own is split (``parts_needed``).
"""

from __future__ import annotations

import math

__all__ = ["parse_limits", "Enqueued", "parts_needed"]


def parse_limits(text: str) -> dict[str, int]:
    """``openai/gpt-4o-mini=90000,openai/*=2000000`` → {"openai/gpt-4o-mini": 90000, "openai/*": 2000000}."""
    limits: dict[str, int] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        key, equals, tokens = entry.partition("=")
        provider, slash, model = key.strip().partition("/")
        if not (equals and slash and provider and model and tokens.strip().isdigit() and int(tokens) > 0):
            raise ValueError(f"{entry!r} is not provider/model=TOKENS (or provider/*=TOKENS) with TOKENS above 0")
        limits[f"{provider}/{model}"] = int(tokens)
    return limits


class Enqueued:
    """The estimated input tokens of each batch at a provider, per provider and model, against the limits."""

    def __init__(self, limits: dict[str, int]) -> None:
        self._limits = limits
        self._batches: dict[str, tuple[str, int]] = {}  # batch key → ("provider/model", tokens)

    def limit(self, provider: str, model: str | None) -> int | None:
        """The limit for this model, if any: its own entry, or its provider's ``*``."""
        return self._limits.get(_key(provider, model)) or self._limits.get(f"{provider}/*")

    def note(self, batch_key: str, provider: str, model: str | None, tokens: int) -> None:
        """The batch is at the provider (or about to be created), unfinished."""
        self._batches[batch_key] = (_key(provider, model), tokens)

    def forget(self, batch_key: str) -> None:
        """The batch ended, was refused, or was never created."""
        self._batches.pop(batch_key, None)

    def waiting(self, provider: str, model: str | None) -> int:
        key = _key(provider, model)
        return sum(tokens for at, tokens in self._batches.values() if at == key)

    def fits(self, provider: str, model: str | None, tokens: int, batch_key: str = "") -> bool:
        """Whether a batch of ``tokens`` may be created now (one already noted is not counted twice)."""
        limit = self.limit(provider, model)
        if limit is None:
            return True
        others = self.waiting(provider, model) - (self._batches.get(batch_key, ("", 0))[1])
        return others + tokens <= limit


def parts_needed(tokens: int, limit: int, items: int) -> int:
    """Into how many parts a batch too large for the limit on its own is split (at most one per item)."""
    return min(items, max(1, math.ceil(tokens / limit)))


def _key(provider: str, model: str | None) -> str:
    return f"{provider}/{model or '*'}"
