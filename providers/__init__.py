"""Provider adapters: one small interface, so agents never know whom they talk to."""

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
]


def make_provider(name: str) -> BatchProvider:
    """The adapter for ``name``, configured from the SDK's own environment variables."""
    if name == "anthropic":
        from providers.anthropic_batches import AnthropicBatches

        return AnthropicBatches()
    if name == "openai":
        from providers.openai_batches import OpenAIBatches

        return OpenAIBatches()
    raise ValueError(f"unknown provider {name!r}")
