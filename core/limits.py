"""What each provider's batch API accepts, and the groups items are batched in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """The hard caps of one provider's batch API."""

    max_items: int
    max_bytes: int
    custom_id: re.Pattern[str]
    endpoints: frozenset[str] | None  # None: the provider has a single endpoint


LIMITS: dict[str, ProviderLimits] = {
    "anthropic": ProviderLimits(
        max_items=100_000,
        max_bytes=256 * MB,
        custom_id=re.compile(r"[a-zA-Z0-9_-]{1,64}"),
        endpoints=None,
    ),
    "openai": ProviderLimits(
        max_items=50_000,
        max_bytes=200 * MB,
        # OpenAI documents no pattern; it needs a non-empty string unique per batch.
        custom_id=re.compile(r".{1,512}", re.DOTALL),
        endpoints=frozenset({"/v1/chat/completions", "/v1/embeddings", "/v1/responses"}),
    ),
}

OPENAI_DEFAULT_ENDPOINT = "/v1/chat/completions"


class BatchGroup(NamedTuple):
    """Items that may share one provider batch.

    OpenAI needs one endpoint and one model per input file; Anthropic mixes
    models freely, so its endpoint and model stay None.
    """

    provider: str
    endpoint: str | None = None
    model: str | None = None

    def label(self) -> str:
        return "/".join(part for part in self if part)


@dataclass(frozen=True, slots=True)
class Caps:
    """The caps a batch of one group closes at: the lower of provider and settings."""

    max_items: int
    max_bytes: int

    @classmethod
    def for_provider(
        cls, provider: str, max_items: int | None = None, max_bytes: int | None = None
    ) -> Caps:
        limits = LIMITS[provider]
        return cls(
            max_items=min(limits.max_items, max_items or limits.max_items),
            max_bytes=min(limits.max_bytes, max_bytes or limits.max_bytes),
        )
