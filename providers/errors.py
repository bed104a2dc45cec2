"""One failure vocabulary: what a provider's error means to tierline, decided the same way for every provider.

Each provider's package says, as a table beside its spec (``ErrorWords`` in its ``errors.py``), which of its
own words mean what, and reads its SDK's exception into a ``Said``. ``meaning`` then decides, in one order
for all of them:

1. the account refused (a credential missing, invalid or revoked; permission denied; no credit): the batch
   waits with one alert until it is fixed, whatever the status (OpenAI says no credit with a 429);
2. no room now, on a create (a queue or a quota of jobs full, an overload): nothing was created, and no
   attempt is spent;
3. unavailable (no answer, a retryable status, a "not now" word): tried again later;
4. the items refused (the call carried them: too large, or one named by its index);
5. not found: a batch gone, or, right after an upload or a create, one not visible yet;
6. anything else: the batch rejected.

A fault of tierline's own is never read here: only the SDK's own exceptions are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.retry import is_retryable
from providers.base import (AccountRefused, BatchNotFound, BatchRejected, ItemsRefused, ProviderBusy, ProviderError,
                            ProviderUnavailable)

__all__ = ["ErrorWords", "Said", "meaning", "said_by_sdk"]


@dataclass(frozen=True, slots=True)
class Said:
    """A provider's error as the SDK gave it."""

    status: int | None  # the HTTP status; None: no answer at all
    kind: str  # the provider's own name for it (a type, a code, a status word); "" if none
    message: str


@dataclass(frozen=True, slots=True)
class ErrorWords:
    """Which of a provider's words mean which of tierline's failures."""

    account: frozenset[str] = frozenset()  # kinds: the account refused
    account_words: tuple[str, ...] = ()  # in a message, lowercase: the account refused (credit, billing)
    busy: frozenset[str] = frozenset()  # kinds that, on a create, say there is no room now
    passing: frozenset[str] = frozenset()  # kinds that say "not now", whatever the status
    not_found: frozenset[str] = frozenset()  # kinds that say there is no such batch, whatever the status
    #: In a 404 on a create, lowercase: the request's fault (a model that does not exist), not a file or batch
    #: not visible yet.
    missing_model_words: tuple[str, ...] = ()
    #: Where a refusal of a call carrying the items names one: its index in the batch.
    item_index: re.Pattern[str] | None = None


def meaning(said: Said, words: ErrorWords, creating: bool = False, about_items: bool = False) -> ProviderError:
    """``said`` as tierline's failure. ``creating``: the call creates a batch (or uploads its input); ``about_items``:
    it carried the items themselves (Anthropic's create), so a 400 is about what they hold and a 413 their size."""
    status, kind, message = said.status, said.kind, said.message
    text = f"HTTP {status}: {message}" if status is not None else message
    named = words.item_index.search(message) if about_items and words.item_index is not None else None
    lowered = message.lower()
    if status in (401, 402, 403) or kind in words.account or \
            (named is None and any(word in lowered for word in words.account_words)):
        return AccountRefused(text)
    if creating and (status in (429, 529) or kind in words.busy):
        return ProviderBusy(text)
    if status is None or kind in words.passing or is_retryable(kind, status):
        return ProviderUnavailable(text)
    if about_items and status == 413:
        return ItemsRefused(text)
    if status == 404 or kind in words.not_found:
        if not creating:
            return BatchNotFound(text)
        if not any(word in lowered for word in words.missing_model_words):
            return ProviderUnavailable(text)  # a file or batch just made, not visible yet
    if about_items and status in (400, 422):
        return ItemsRefused(text, {int(named.group(1)): message} if named else {})
    return BatchRejected(text)


def said_by_sdk(exc: Exception) -> Said:
    """What the anthropic and openai SDKs' exceptions say (``APIStatusError``; a connection error has no status)."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    kind = (error.get("type") or error.get("code")) if isinstance(error, dict) else None
    return Said(status, str(kind or ""), str(getattr(exc, "message", None) or exc)[:2000])
