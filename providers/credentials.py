"""Which providers' credentials this worker holds, looked at once when it starts.

A worker without a provider's credential still takes work for the others: that provider's batches wait
with one ``provider_refused`` alert (the adapter refuses to start without it) until it is set. Starting,
the worker says which are missing: a log line each (``provider_credentials_missing``), a ``credentials_missing``
entry in ``/readyz`` (not a readiness check) and ``tierline_provider_credentials``.

Each provider's spec says where its credential is (``ProviderSpec.credential_missing``): the SDK's own
variables, as the SDK reads them; Bedrock's, boto3's whole chain.
"""

from __future__ import annotations

import os

from core.spec import Catalogue
from providers.base import AccountRefused

__all__ = ["credentials", "require", "unset"]


def credentials(catalogue: Catalogue) -> dict[str, str | None]:
    """Per provider this worker may be sent: None if its credential is there, else what to set."""
    return {name: missing() for name, spec in catalogue.items() if (missing := spec.credential_missing) is not None}


def unset(names: tuple[str, ...]) -> str | None:
    """None if any of these variables is set (or there are none), else what to set."""
    return None if not names or any(os.environ.get(name) for name in names) else f"set {' or '.join(names)}"


def require(provider: str, names: tuple[str, ...]) -> None:
    """The SDK's credential is in the environment, or the account's refusal: its batches wait, nothing fails
    (a client made without it would keep its empty key)."""
    if (fix := unset(names)) is not None:
        raise AccountRefused(f"no {provider} API key: {fix} in the worker's environment")
