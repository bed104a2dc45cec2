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
    min_items: int = 1  # fewer and the provider refuses the batch
    quota: bool = False  # the caps are account quotas (settings may raise them), not hard limits
    default_endpoint: str | None = None  # an item's endpoint when it names none


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
        default_endpoint="/v1/chat/completions",
    ),
    # Bedrock's are per-model service quotas, with these defaults; one input file per job.
    "bedrock": ProviderLimits(
        max_items=50_000,
        max_bytes=1024 * MB,
        custom_id=re.compile(r".{1,512}", re.DOTALL),
        endpoints=frozenset({"InvokeModel", "Converse"}),  # modelInvocationType: one per job
        min_items=100,
        quota=True,
    ),
    # Gemini's input file may be up to 2 GB; it documents no cap on requests, so tierline keeps
    # OpenAI's (a setting may lower it). Its ``key`` is the custom_id.
    "gemini": ProviderLimits(
        max_items=50_000,
        max_bytes=2_000 * MB,
        custom_id=re.compile(r".{1,512}", re.DOTALL),
        endpoints=None,
    ),
}

OPENAI_DEFAULT_ENDPOINT = "/v1/chat/completions"

#: What tierline's records of a request add to it (its context in a batch's items, a retry's fields): a
#: request may take the Kafka record limit less this.
REQUEST_HEADROOM = 4_096


def request_limit(max_record_bytes: int) -> int:
    """The largest request, in bytes, that tierline can carry in Kafka records of ``max_record_bytes``."""
    return max_record_bytes - REQUEST_HEADROOM


#: ``invocation`` of a Bedrock work item → the job's ``modelInvocationType``.
BEDROCK_INVOCATIONS = {"invoke": "InvokeModel", "converse": "Converse"}


class BatchGroup(NamedTuple):
    """Items that may share one provider batch.

    OpenAI needs one endpoint and one model per input file, Bedrock one model and
    one invocation type per job, Gemini one model per job; Anthropic mixes models
    freely, so its endpoint and model stay None.
    """

    provider: str
    endpoint: str | None = None
    model: str | None = None

    def label(self) -> str:
        return "/".join(part for part in self if part)


@dataclass(frozen=True, slots=True)
class Caps:
    """The caps a batch of one group closes at, and the fewest items it may be submitted with.

    A provider's hard limits cap the settings; where its caps are account quotas
    (``quota``), ``quota_items``/``quota_bytes``/``min_items`` say what this account's are.
    """

    max_items: int
    max_bytes: int
    min_items: int = 1

    @classmethod
    def for_provider(
        cls, provider: str, max_items: int | None = None, max_bytes: int | None = None,
        quota_items: int | None = None, quota_bytes: int | None = None, min_items: int | None = None,
    ) -> Caps:
        limits = LIMITS[provider]
        top_items = (quota_items or limits.max_items) if limits.quota else limits.max_items
        top_bytes = (quota_bytes or limits.max_bytes) if limits.quota else limits.max_bytes
        least = (min_items if min_items is not None else limits.min_items) if limits.quota else limits.min_items
        return cls(
            max_items=min(top_items, max_items or top_items),
            max_bytes=min(top_bytes, max_bytes or top_bytes),
            min_items=max(1, least),
        )
