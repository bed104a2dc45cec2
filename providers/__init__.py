"""Provider adapters: one small interface, so agents never know whom they talk to."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from core.lanes import Lane, declared
from providers.credentials import key_missing
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
    import openai

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
    """The adapter for ``name``: credentials from the SDK's own environment, the rest from ``settings``.

    Each adapter, with its SDK, is imported when its provider is first used (the SDKs take 10 to 50 MB
    each, and a second or so to import): a worker never pays for a provider it is not sent.
    """
    if name == "anthropic":
        _require_key(name)
        from providers.anthropic_batches import AnthropicBatches

        return AnthropicBatches()
    if name == "openai":
        _require_key(name)
        from providers.openai_batches import OpenAIBatches

        return OpenAIBatches(output_expires_s=settings.openai_output_expires_s,
                             keep_input_files=settings.keep_input_files)
    if name == "bedrock":
        from providers.bedrock_batches import BedrockBatches, BedrockConfig

        return BedrockBatches(BedrockConfig(
            bucket=settings.bedrock_bucket, role_arn=settings.bedrock_role_arn, prefix=settings.bedrock_prefix,
            region=settings.bedrock_region, timeout_hours=settings.bedrock_timeout_hours))
    if name == "gemini":
        from providers.gemini_batches import GeminiBatches

        return GeminiBatches(scratch_dir=settings.spool_dir, keep_input_files=settings.keep_input_files)
    lane = declared(name)
    if lane is not None:
        _require_key(name)  # a client made without it would keep its empty key
        from providers.openai_batches import OpenAIBatches

        return OpenAIBatches(_lane_client(lane), output_expires_s=None, keep_input_files=settings.keep_input_files,
                             name=lane.name, purpose=lane.purpose, metadata=lane.metadata,
                             completion_window=lane.completion_window)
    raise ValueError(f"unknown provider {name!r}")


def _require_key(provider: str) -> None:
    """The SDK's credential is in the environment, or the account's refusal: its batches wait, nothing fails."""
    if (fix := key_missing(provider)) is not None:
        raise AccountRefused(f"no {provider} API key: {fix} in the worker's environment")


def _lane_client(lane: Lane) -> openai.AsyncOpenAI:
    """The OpenAI SDK's client for a declared lane: its address and key from the environment it names."""
    import openai

    key = os.environ.get(lane.api_key_env, "")
    if lane.kind == "azure-openai":
        return openai.AsyncAzureOpenAI(azure_endpoint=lane.address, api_version=lane.api_version, api_key=key)
    return openai.AsyncOpenAI(base_url=lane.address, api_key=key)
