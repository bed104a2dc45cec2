"""OpenAI's error words (``providers.errors``), which the OpenAI-shaped lanes share."""

from __future__ import annotations

from providers.errors import ErrorWords

__all__ = ["WORDS"]

WORDS = ErrorWords(
    account=frozenset({"insufficient_quota", "invalid_api_key", "account_deactivated", "billing_hard_limit_reached"}),
    account_words=("billing", "exceeded your current quota"),  # a 429 for want of credit is the account's
    busy=frozenset({"rate_limit_exceeded"}),  # too many batch creates in the last hour
)
