"""Providers: one package each (``providers/<name>/``: its spec, its batch adapter, its synchronous calls),
behind one small interface, so that agents never know whom they talk to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.base import (
    AccountRefused,
    BatchProvider,
    BatchNotFound,
    BatchRejected,
    BatchStatus,
    ItemOutcome,
    ItemsRefused,
    NotYetKnown,
    ProviderBusy,
    ProviderError,
    ProviderUnavailable,
    SpooledBatch,
)

if TYPE_CHECKING:
    from streams.settings import Settings

__all__ = [
    "AccountRefused",
    "BatchProvider",
    "BatchNotFound",
    "BatchRejected",
    "BatchStatus",
    "ItemOutcome",
    "ItemsRefused",
    "NotYetKnown",
    "ProviderBusy",
    "ProviderError",
    "ProviderUnavailable",
    "SpooledBatch",
    "make_provider",
]


def make_provider(name: str, settings: Settings) -> BatchProvider:
    """The batch adapter of ``name`` (its package's, through the settings' catalogue). It may refuse to start
    (``AccountRefused``: a credential missing): its batches then wait, nothing fails."""
    return settings.catalogue[name].batches()
