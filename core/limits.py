"""What a provider's batch API accepts (each provider's spec says its own), and the groups items are batched in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """The caps of one provider's batch API: its hard limits, or, where they are account quotas, this account's."""

    max_items: int
    max_bytes: int
    custom_id: re.Pattern[str]
    endpoints: frozenset[str] | None  # None: the provider has a single endpoint
    min_items: int = 1  # fewer and the provider refuses the batch
    default_endpoint: str | None = None  # an item's endpoint when it names none


#: What tierline's records of a request add to it (its context in a batch's items, a retry's fields): a
#: request may take the Kafka record limit less this.
REQUEST_HEADROOM = 4_096


def request_limit(max_record_bytes: int) -> int:
    """The largest request, in bytes, that tierline can carry in Kafka records of ``max_record_bytes``."""
    return max_record_bytes - REQUEST_HEADROOM


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
    """The caps a batch of one group closes at, and the fewest items it may be submitted with."""

    max_items: int
    max_bytes: int
    min_items: int = 1

    @classmethod
    def within(cls, limits: ProviderLimits, max_items: int | None = None, max_bytes: int | None = None) -> Caps:
        """The provider's ``limits``, lowered by the settings' ``max_items`` and ``max_bytes`` where given."""
        return cls(max_items=min(limits.max_items, max_items or limits.max_items),
                   max_bytes=min(limits.max_bytes, max_bytes or limits.max_bytes),
                   min_items=max(1, limits.min_items))
