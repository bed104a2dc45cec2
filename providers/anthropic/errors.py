"""Anthropic's error words (``providers.errors``)."""

from __future__ import annotations

import re

from providers.errors import ErrorWords

__all__ = ["WORDS"]

WORDS = ErrorWords(
    account=frozenset({"authentication_error", "permission_error", "billing_error"}),
    account_words=("credit balance", "billing"),  # "Your credit balance is too low ... Plans & Billing"
    busy=frozenset({"rate_limit_error", "overloaded_error"}),  # the processing queue full; overloaded
    item_index=re.compile(r"\brequests\.(\d+)\b"),  # "requests.3.params.max_tokens: Field required"
)
