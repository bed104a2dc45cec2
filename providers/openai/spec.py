"""What tierline knows of OpenAI's APIs."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Mapping

from core.deadlines import DAY, ProviderWindows
from core.limits import MB, ProviderLimits
from core.spec import Pricing, ProviderSpec, Upstream
from providers.credentials import unset
from providers.openai.wire import DEFAULT_ENDPOINT, ENDPOINTS, Wire

if TYPE_CHECKING:
    from providers.base import BatchProvider
    from streams.settings import Settings

__all__ = ["CANNOT", "CUSTOM_ID", "LIMITS", "spec", "upstream"]

#: OpenAI documents no pattern for a custom_id: a non-empty string, unique in its batch.
CUSTOM_ID = re.compile(r".{1,512}", re.DOTALL)
LIMITS = ProviderLimits(max_items=50_000, max_bytes=200 * MB, custom_id=CUSTOM_ID, endpoints=ENDPOINTS,
                        default_endpoint=DEFAULT_ENDPOINT)
KEYS = ("OPENAI_API_KEY",)
#: What an OpenAI-shaped service cannot do, and why.
CANNOT = {"no room on create": "refuses no create for room: a queue full is an accepted batch failing validation "
                               "(tests/test_capacity.py)",
          "an item refused at create, unnamed": "names each line it refuses (its batch's errors)"}


def upstream(path: str, incoming: Mapping[str, str], model: str = "") -> Upstream:
    """OpenAI's ``path``, with the SDK's variables (``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID`` among them)."""
    env = os.environ
    base = (env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
    headers = {"authorization": f"Bearer {env.get('OPENAI_API_KEY', '')}", "content-type": "application/json"}
    for variable, header in (("OPENAI_ORG_ID", "openai-organization"), ("OPENAI_PROJECT_ID", "openai-project")):
        if value := env.get(variable):
            headers[header] = value
    return Upstream(base + path.removeprefix("/v1"), headers)


def spec(settings: Settings) -> ProviderSpec:
    from providers.openai.realtime import Realtime

    def batches() -> BatchProvider:
        from providers.credentials import require
        from providers.openai.batches import OpenAIBatches

        require("openai", KEYS)
        return OpenAIBatches(output_expires_s=settings.openai_output_expires_s,
                             keep_input_files=settings.keep_input_files)

    # A batch ends within a day; tierline sets how long its output is kept (output_expires_after).
    windows = ProviderWindows(completion_s=DAY, retention_s=float(settings.openai_output_expires_s))
    return ProviderSpec(
        name="openai", limits=LIMITS, windows=windows, wire=Wire(), pricing=Pricing("openai", "openai"),
        batches=batches, upstream=upstream, credential_missing=lambda: unset(KEYS),
        flex_models=settings.flex_model_names, realtime=Realtime(), cannot=CANNOT)
