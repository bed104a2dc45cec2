"""What tierline knows of the Gemini API."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Mapping

from core.deadlines import DAY, ProviderWindows
from core.limits import MB, ProviderLimits
from core.spec import Pricing, ProviderSpec, Upstream
from providers.credentials import unset
from providers.gemini.wire import Wire
from providers.wire import REFUSED_AT_CREATE

if TYPE_CHECKING:
    from providers.base import BatchProvider
    from streams.settings import Settings

__all__ = ["spec"]

#: Its input file may be up to 2 GB; it documents no cap on requests, so tierline keeps OpenAI's (a setting
#: may lower it). Its ``key`` is the custom_id.
LIMITS = ProviderLimits(max_items=50_000, max_bytes=2_000 * MB, custom_id=re.compile(r".{1,512}", re.DOTALL),
                        endpoints=None)
#: It aims at 24 h and expires a job after 48 h; the Files API keeps a file 48 h.
WINDOWS = ProviderWindows(completion_s=2 * DAY, retention_s=2 * DAY)
#: google-genai's variables (it reads GOOGLE_API_KEY first when both are set).
KEYS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


def upstream(path: str, incoming: Mapping[str, str], model: str = "") -> Upstream:
    env = os.environ
    base = (env.get("GOOGLE_GEMINI_BASE_URL") or "https://generativelanguage.googleapis.com").rstrip("/")
    key = env.get("GOOGLE_API_KEY") or env.get("GEMINI_API_KEY", "")
    return Upstream(base + path, {"x-goog-api-key": key, "content-type": "application/json"})


def spec(settings: Settings) -> ProviderSpec:
    def batches() -> BatchProvider:
        from providers.gemini.batches import GeminiBatches

        webhook = settings.webhook_url.rstrip("/") + "/webhooks/gemini" if settings.webhook_url else ""
        return GeminiBatches(scratch_dir=settings.spool_dir, keep_input_files=settings.keep_input_files,
                             webhook_uri=webhook)

    return ProviderSpec(
        name="gemini", limits=LIMITS, windows=WINDOWS, wire=Wire(), pricing=Pricing("gemini", "google"),
        batches=batches, upstream=upstream, credential_missing=lambda: unset(KEYS),
        cannot=REFUSED_AT_CREATE)
