"""Provider adapters: one small interface, so agents never know whom they talk to."""

import importlib

from providers.base import (
    BatchProvider,
    BatchRejected,
    BatchStatus,
    ItemOutcome,
    ProviderError,
    ProviderUnavailable,
    SpooledBatch,
)

__all__ = [
    "BatchProvider",
    "BatchRejected",
    "BatchStatus",
    "ItemOutcome",
    "ProviderError",
    "ProviderUnavailable",
    "SpooledBatch",
    "make_provider",
    "preload",
]

_ADAPTERS = ("providers.anthropic_batches", "providers.openai_batches")


def preload() -> None:
    """Import the SDKs now, at start-up, rather than during the first batch (about a second)."""
    for module in _ADAPTERS:
        importlib.import_module(module)


def make_provider(name: str) -> BatchProvider:
    """The adapter for ``name``, configured from the SDK's own environment variables."""
    if name == "anthropic":
        from providers.anthropic_batches import AnthropicBatches

        return AnthropicBatches()
    if name == "openai":
        from providers.openai_batches import OpenAIBatches

        return OpenAIBatches()
    raise ValueError(f"unknown provider {name!r}")
