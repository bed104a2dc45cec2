"""What tierline knows of Anthropic's APIs."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Mapping

from core.deadlines import DAY, ProviderWindows
from core.limits import MB, ProviderLimits
from core.spec import Pricing, ProviderSpec, Upstream
from providers.credentials import unset
from providers.anthropic.wire import Wire

if TYPE_CHECKING:
    from providers.base import BatchProvider
    from streams.settings import Settings

__all__ = ["spec", "upstream"]

LIMITS = ProviderLimits(max_items=100_000, max_bytes=256 * MB, custom_id=re.compile(r"[a-zA-Z0-9_-]{1,64}"),
                        endpoints=None)
#: A batch ends within a day; its results are kept 29 days from its creation.
WINDOWS = ProviderWindows(completion_s=DAY, retention_s=29 * DAY)
#: The variables the SDK takes its credential from (either will do).
KEYS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


def upstream(path: str, incoming: Mapping[str, str], model: str = "") -> Upstream:
    """The Messages API, with the SDK's variables: a bearer token (``ANTHROPIC_AUTH_TOKEN``) when there is no
    API key, as the SDK does; the client's ``anthropic-version`` and ``anthropic-beta`` passed on."""
    env = os.environ
    base = (env.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com").rstrip("/")
    headers = {"anthropic-version": incoming.get("anthropic-version", "2023-06-01"), "content-type": "application/json"}
    if env.get("ANTHROPIC_API_KEY") or not env.get("ANTHROPIC_AUTH_TOKEN"):
        headers["x-api-key"] = env.get("ANTHROPIC_API_KEY", "")
    else:
        headers["authorization"] = f"Bearer {env['ANTHROPIC_AUTH_TOKEN']}"
    if beta := incoming.get("anthropic-beta"):
        headers["anthropic-beta"] = beta
    return Upstream(base + path, headers)


def spec(settings: Settings) -> ProviderSpec:
    from providers.anthropic.realtime import Realtime

    def batches() -> BatchProvider:
        from providers.anthropic.batches import AnthropicBatches
        from providers.credentials import require

        require("anthropic", KEYS)
        return AnthropicBatches()

    return ProviderSpec(
        name="anthropic", limits=LIMITS, windows=WINDOWS, wire=Wire(), pricing=Pricing("anthropic", "anthropic"),
        batches=batches, upstream=upstream, credential_missing=lambda: unset(KEYS),
        realtime=Realtime())
