"""Gemini's error words (``providers.errors``): google-genai's ``APIError`` status words."""

from __future__ import annotations

from typing import Any

from providers.errors import ErrorWords, Said

__all__ = ["WORDS", "said_by_genai"]

WORDS = ErrorWords(
    # Gemini answers a bad key 400, so its words count whatever the status.
    account=frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"}),
    account_words=("api key not valid", "api key expired", "billing", "api_key_invalid"),
    busy=frozenset({"RESOURCE_EXHAUSTED"}),  # a quota of jobs full: known to come after the upload went through
    missing_model_words=("models/",),  # a create's 404 naming a model: no such model, not a file not yet seen
)


def said_by_genai(exc: Any) -> Said:
    """A google-genai ``APIError`` (any other of ``SDK_FAILURES`` is no answer at all)."""
    from google.genai import errors as genai_errors

    if not isinstance(exc, genai_errors.APIError):
        return Said(None, "", f"{type(exc).__name__}: {exc}"[:2000])
    return Said(exc.code, str(exc.status or ""), f"{exc.status or ''}: {str(exc.message or exc)[:2000]}")
