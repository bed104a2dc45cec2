"""Batch lanes declared by configuration: providers that speak OpenAI's Files + Batch API; pure.

A providers file (``TIERLINE_PROVIDERS_FILE``, TOML or JSON) names each extra provider under
``providers``; a work item names it in ``provider``. Two kinds:

- ``openai-compatible`` (Groq, Together, xAI, DeepInfra, ...): ``base_url``, ``api_key_env``.
- ``azure-openai``: ``azure_endpoint``, ``api_version``, ``api_key_env``; a batch's ``model`` is a
  global-batch deployment, priced as the OpenAI model ``deployments`` maps it to.

``base_url_env`` names an environment variable that, when set, overrides ``base_url`` (or
``azure_endpoint``): one file serves the real service and a test double.

Either may say what differs from OpenAI's own: ``purpose`` of the upload (Together wants
``batch-api``), ``metadata`` (false: the service refuses it, and an orphaned batch is found by its
input file's name), ``completion_window``, ``window_hours``, ``max_items``, ``max_bytes_mb``,
``endpoints``, and ``prices_from`` (whose price table its models are priced from; by default its own
section of the price file, then OpenAI's for Azure). Everything else is what the OpenAI lane does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from core.deadlines import DAY, ProviderWindows
from core.limits import MB, ProviderLimits
from providers.openai.spec import CUSTOM_ID

__all__ = ["BUILT_IN", "Lane", "LaneError", "KINDS", "parse_lanes"]

KINDS = ("openai-compatible", "azure-openai")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
#: The providers tierline knows without a declaration.
BUILT_IN = ("anthropic", "bedrock", "gemini", "openai")
_FIELDS = frozenset({"kind", "base_url", "base_url_env", "api_key_env", "azure_endpoint", "api_version", "purpose",
                     "metadata", "completion_window", "window_hours", "max_items", "max_bytes_mb", "endpoints",
                     "deployments", "prices_from"})


#: What each setting that is not a string must be, and how to say it.
_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "metadata": (bool, "true or false"), "window_hours": ((int, float), "a number of hours"),
    "max_items": (int, "a whole number"), "max_bytes_mb": (int, "a whole number of MB"),
    "endpoints": (list, "a list of paths"), "deployments": (dict, "a table of deployment = model"),
    "completion_window": (str, "a string such as 24h")}


class LaneError(ValueError):
    """A declaration that cannot work, in words that say what to fix."""


@dataclass(frozen=True, slots=True)
class Lane:
    """One declared provider."""

    name: str
    kind: str
    api_key_env: str
    base_url: str | None = None
    base_url_env: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    purpose: str = "batch"
    metadata: bool = True
    completion_window: str = "24h"
    window_hours: float = 24.0
    max_items: int = 50_000
    max_bytes_mb: int = 200
    endpoints: tuple[str, ...] = ("/v1/chat/completions",)
    deployments: dict[str, str] = field(default_factory=dict)
    prices_from: str | None = None

    @property
    def address(self) -> str:
        """Where the service is: ``base_url_env``'s value when set, else ``base_url`` (``azure_endpoint``)."""
        given = os.environ.get(self.base_url_env, "") if self.base_url_env else ""
        return given or self.base_url or self.azure_endpoint or ""

    @property
    def limits(self) -> ProviderLimits:
        return ProviderLimits(max_items=self.max_items, max_bytes=self.max_bytes_mb * MB,
                              custom_id=CUSTOM_ID, endpoints=frozenset(self.endpoints),
                              default_endpoint=self.endpoints[0])

    @property
    def windows(self) -> ProviderWindows:
        return ProviderWindows(completion_s=self.window_hours * 3600, retention_s=30 * DAY)


def parse_lanes(doc: Any, source: str = "the providers file") -> list[Lane]:
    """The lanes ``doc`` (the parsed file) declares under ``providers``."""
    table = doc.get("providers") if isinstance(doc, dict) else None
    if not isinstance(table, dict):
        raise LaneError(f"{source}: expected a [providers.NAME] table (TOML) or {{\"providers\": {{...}}}} (JSON)")
    return [_lane(name, spec, source) for name, spec in table.items()]


def _lane(name: Any, spec: Any, source: str) -> Lane:
    where = f"{source}, provider {name!r}"
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in BUILT_IN:
        raise LaneError(f"{where}: a name is 1 to 32 lowercase letters, digits and dashes, and not one of "
                        f"{', '.join(BUILT_IN)}")
    if not isinstance(spec, dict):
        raise LaneError(f"{where}: expected a table of settings")
    if unknown := sorted(set(spec) - _FIELDS):
        raise LaneError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise LaneError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    needed = ("api_key_env", "base_url") if kind == "openai-compatible" else \
        ("api_key_env", "azure_endpoint", "api_version")
    for setting in needed:
        if not isinstance(spec.get(setting), str) or not spec[setting]:
            raise LaneError(f"{where}: {setting} is required for kind {kind}")
    for setting in ("base_url", "azure_endpoint"):
        if setting in spec and not str(spec[setting]).startswith(("http://", "https://")):
            raise LaneError(f"{where}: {setting} must be an http:// or https:// URL")
    values: dict[str, Any] = {k: v for k, v in spec.items() if k != "kind"}
    for setting, value in values.items():
        kinds, words = _TYPES.get(setting, (str, "a string"))
        # true and false are no numbers here, though Python counts them as ints
        if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
            raise LaneError(f"{where}: {setting} must be {words}")
    if not all(isinstance(v, str) and v for v in values.get("deployments", {}).values()):
        raise LaneError(f"{where}: deployments maps each deployment to the name of the model it serves")
    if "endpoints" in values:
        if not values["endpoints"] or not all(isinstance(e, str) and e.startswith("/") for e in values["endpoints"]):
            raise LaneError(f"{where}: endpoints must be a non-empty list of paths such as /v1/chat/completions")
        values["endpoints"] = tuple(values["endpoints"])
    if not 1 <= values.get("max_items", 1) <= 1_000_000 or not 1 <= values.get("max_bytes_mb", 1) <= 10_000:
        raise LaneError(f"{where}: max_items must be 1 to 1,000,000 and max_bytes_mb 1 to 10,000")
    if not 0 < values.get("window_hours", 24) <= 24 * 30:
        raise LaneError(f"{where}: window_hours must be more than 0 and at most 720")
    return Lane(name=name, kind=kind, **values)
