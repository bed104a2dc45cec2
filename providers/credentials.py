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

from core.lanes import declared, declared_lanes

if TYPE_CHECKING:
    from streams.settings import Settings

__all__ = ["credentials", "key_missing"]

#: The variables each SDK takes its key from (any one will do).
KEYS = {"anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"), "openai": ("OPENAI_API_KEY",),
        "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}


def key_missing(provider: str) -> str | None:
    """What to set for the API key of ``provider`` (a built-in one, or a declared lane), or None if it is there
    (or the provider takes none: Bedrock's credentials are boto3's)."""
    lane = declared(provider)
    return _unset(KEYS.get(provider) or ((lane.api_key_env,) if lane is not None else ()))


def credentials(settings: Settings) -> dict[str, str | None]:
    """Per provider this worker may be sent: None if its credential is there, else what to set."""
    found = {name: _unset(names) for name, names in KEYS.items()}
    if settings.bedrock_bucket:
        found["bedrock"] = None if _aws_credentials() else \
            "give the worker AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role)"
    for lane in declared_lanes():
        found[lane.name] = _unset((lane.api_key_env,))
    return found


def _unset(names: tuple[str, ...]) -> str | None:
    """None if any of these variables is set (or there are none), else what to set."""
    return None if not names or any(os.environ.get(name) for name in names) else f"set {' or '.join(names)}"


def _aws_credentials() -> bool:
    import boto3  # only for a worker set up for Bedrock

    return boto3.Session().get_credentials() is not None
