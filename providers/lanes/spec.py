"""A declared lane as a provider: OpenAI's wire and batch adapter, with the lane's own address and quirks."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping

from core.spec import Pricing, ProviderSpec, Upstream
from providers.credentials import unset
from providers.lanes.declaration import Lane
from providers.openai.spec import CANNOT
from providers.openai.wire import Wire

if TYPE_CHECKING:
    import openai

    from providers.base import BatchProvider
    from streams.settings import Settings

__all__ = ["lane_spec"]


def lane_spec(lane: Lane, settings: Settings, maintained: str | None = None) -> ProviderSpec:
    """``lane``'s spec; its models are priced from ``lane.prices_from`` (by default its own table, then
    OpenAI's for Azure), whose genai-prices name is ``maintained``."""
    keys = (lane.api_key_env,)

    def batches() -> BatchProvider:
        from providers.credentials import require
        from providers.openai.batches import OpenAIBatches

        require(lane.name, keys)
        return OpenAIBatches(_client(lane), output_expires_s=None, keep_input_files=settings.keep_input_files,
                             name=lane.name, purpose=lane.purpose, metadata=lane.metadata,
                             completion_window=lane.completion_window)

    def upstream(path: str, incoming: Mapping[str, str], model: str = "") -> Upstream:
        """OpenAI's paths under the lane's base URL, or Azure's per deployment."""
        key, base = os.environ.get(lane.api_key_env, ""), lane.address.rstrip("/")
        if lane.kind == "azure-openai":
            url = f"{base}/openai/deployments/{model}{path.removeprefix('/v1')}?api-version={lane.api_version}"
            return Upstream(url, {"api-key": key, "content-type": "application/json"})
        return Upstream(base + path.removeprefix("/v1"), {"authorization": f"Bearer {key}",
                                                          "content-type": "application/json"})

    limits = lane.limits
    return ProviderSpec(
        name=lane.name, limits=limits, windows=lane.windows, wire=Wire(lane.endpoints[0]),
        pricing=Pricing(price_table(lane), maintained, lambda model: lane.deployments.get(model, model)),
        batches=batches, upstream=upstream, credential_missing=lambda: unset(keys),
        cannot=CANNOT)


def price_table(lane: Lane) -> str:
    """Whose price table prices the lane's models: ``prices_from``, else its own, OpenAI's for Azure."""
    return lane.prices_from or ("openai" if lane.kind == "azure-openai" else lane.name)


def _client(lane: Lane) -> openai.AsyncOpenAI:
    """The OpenAI SDK's client for the lane: its address and key from the environment it names."""
    import openai

    key = os.environ.get(lane.api_key_env, "")
    if lane.kind == "azure-openai":
        return openai.AsyncAzureOpenAI(azure_endpoint=lane.address, api_version=lane.api_version, api_key=key)
    return openai.AsyncOpenAI(base_url=lane.address, api_key=key)
