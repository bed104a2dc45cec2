"""A provider defined outside tierline, to prove the plug-in: nothing outside this package knows it.

``gateway`` is an Anthropic-compatible gateway (a company's proxy in front of Claude, say): Anthropic's
Message Batches API at its own address (``GATEWAY_BASE_URL``) with its own key (``GATEWAY_API_KEY``), its own
caps (10,000 requests, 32 MB) and windows (12 h to finish, results kept 7 days), priced as Anthropic's
models. It reaches the catalogue as any provider of your own does: ``TIERLINE_PROVIDER_PLUGINS=
tests.gateway:spec``; the provider × failure matrix plays it as it plays the built-in ones.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Mapping

from core.deadlines import DAY, ProviderWindows
from core.limits import MB, ProviderLimits
from core.spec import Pricing, ProviderSpec, Upstream
from providers.anthropic.wire import Wire
from providers.credentials import require, unset

if TYPE_CHECKING:
    from providers.base import BatchProvider
    from streams.settings import Settings

__all__ = ["spec"]

KEYS = ("GATEWAY_API_KEY",)
LIMITS = ProviderLimits(max_items=10_000, max_bytes=32 * MB, custom_id=re.compile(r"[a-zA-Z0-9_-]{1,64}"),
                        endpoints=None)
WINDOWS = ProviderWindows(completion_s=12 * 3600, retention_s=7 * DAY)


def _address() -> str:
    return os.environ.get("GATEWAY_BASE_URL", "https://llm-gateway.internal").rstrip("/")


def upstream(path: str, incoming: Mapping[str, str], model: str = "") -> Upstream:
    return Upstream(_address() + path, {"x-api-key": os.environ.get("GATEWAY_API_KEY", ""),
                                        "anthropic-version": "2023-06-01", "content-type": "application/json"})


def spec(settings: Settings) -> ProviderSpec:
    def batches() -> BatchProvider:
        import anthropic

        from providers.anthropic.batches import AnthropicBatches

        require("gateway", KEYS)
        client = anthropic.AsyncAnthropic(base_url=_address(), api_key=os.environ["GATEWAY_API_KEY"])
        return AnthropicBatches(client, name="gateway")

    return ProviderSpec(
        name="gateway", limits=LIMITS, windows=WINDOWS, wire=Wire(), pricing=Pricing("anthropic", "anthropic"),
        batches=batches, upstream=upstream, credential_missing=lambda: unset(KEYS))
