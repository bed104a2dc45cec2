"""Which providers' credentials this worker holds, looked at once when it starts.

A worker without a provider's credential still takes work for the others: that provider's batches wait
with one ``provider_refused`` alert (the adapter refuses to start without it) until it is set. Starting,
the worker says which are missing: a log line each (``provider_credentials_missing``), a ``credentials_missing``
entry in ``/readyz`` (not a readiness check) and ``tierline_provider_credentials``.

Each SDK's own variables, as the SDK reads them; Bedrock's are boto3's whole chain (variables, profile,
container or instance role), asked only when Bedrock is set up (``TIERLINE_BEDROCK_BUCKET``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from core.lanes import declared_lanes

if TYPE_CHECKING:
    from streams.settings import Settings

__all__ = ["credentials"]

#: The variables each SDK takes its key from (any one will do).
KEYS = {"anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"), "openai": ("OPENAI_API_KEY",),
        "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}


def credentials(settings: Settings) -> dict[str, str | None]:
    """Per provider this worker may be sent: None if its credential is there, else what to set."""
    found: dict[str, str | None] = {
        name: None if any(os.environ.get(key) for key in keys) else f"set {' or '.join(keys)}"
        for name, keys in KEYS.items()}
    if settings.bedrock_bucket:
        found["bedrock"] = None if _aws_credentials() else \
            "give the worker AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role)"
    for lane in declared_lanes():
        found[lane.name] = None if os.environ.get(lane.api_key_env) else f"set {lane.api_key_env}"
    return found


def _aws_credentials() -> bool:
    import boto3  # only for a worker set up for Bedrock

    return boto3.Session().get_credentials() is not None
