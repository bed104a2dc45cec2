"""The catalogue of providers a deployment knows: built once from the settings, then passed to what needs it.

The built-in providers, each from its own package's ``spec(settings)``; then the lanes the providers file
declares (``providers.lanes``); then plug-ins named by ``TIERLINE_PROVIDER_PLUGINS`` (``module:function``, a
function of the settings that returns a ``core.spec.ProviderSpec``), which need no change anywhere else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

from core.spec import Catalogue, ProviderSpec
from providers.anthropic.spec import spec as anthropic
from providers.bedrock.spec import spec as bedrock
from providers.gemini.spec import spec as gemini
from providers.lanes.spec import lane_spec, price_table
from providers.openai.spec import spec as openai

if TYPE_CHECKING:
    from streams.settings import Settings

__all__ = ["BUILT_IN", "PluginError", "build", "plugin"]

#: Each built-in provider's spec, made from the settings.
BUILT_IN: tuple[Callable[[Settings], ProviderSpec], ...] = (anthropic, bedrock, gemini, openai)


class PluginError(ValueError):
    """A plug-in that cannot be loaded, in words that say what to fix."""


def build(settings: Settings, plugins: tuple[Callable[[Settings], ProviderSpec], ...] = ()) -> Catalogue:
    """Every provider this deployment knows."""
    specs = [make(settings) for make in BUILT_IN]
    known = {spec.name: spec for spec in specs}
    for lane in settings.lanes:
        table = known.get(price_table(lane))
        specs.append(lane_spec(lane, settings, table.pricing.maintained if table is not None else None))
    for make in (*plugins, *(plugin(path) for path in settings.plugin_names)):
        spec = make(settings)
        if spec.name in {s.name for s in specs}:
            raise PluginError(f"provider plug-in {spec.name!r}: a provider of that name is already known")
        specs.append(spec)
    return Catalogue(specs, settings.batch_max_items, settings.batch_max_bytes)


def plugin(path: str) -> Callable[[Settings], ProviderSpec]:
    """The spec factory ``module:function`` names."""
    module, _, name = path.partition(":")
    try:
        found = getattr(importlib.import_module(module), name or "spec")
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"TIERLINE_PROVIDER_PLUGINS: {path!r} cannot be loaded ({exc}); give module:function, "
                          "a function of the settings that returns a ProviderSpec") from None
    if not callable(found):
        raise PluginError(f"TIERLINE_PROVIDER_PLUGINS: {path!r} is not a function")
    return found  # type: ignore[no-any-return]


def warm(catalogue: Catalogue, *names: str) -> None:
    """Make the request checks (``Wire.problem``) of these providers (all: none named) now: each is compiled from
    its SDK's request type when first asked (from the cache of ``providers.shape_cache``, or else imported: 0.6 s
    for OpenAI's and 1.2 s for Anthropic's here), which the first item after a start would otherwise wait for. A
    check that cannot be made now is made when asked."""
    for name in names or tuple(catalogue):
        spec = catalogue[name]
        for endpoint in sorted(spec.limits.endpoints or {None}, key=str):
            for invocation in ("invoke", "converse"):
                try:
                    spec.wire.problem(endpoint, {"model": "anthropic.warm", "invocation": invocation}, {})
                except Exception:  # noqa: BLE001, S112 - warming only: the item's own check says what is wrong
                    continue
