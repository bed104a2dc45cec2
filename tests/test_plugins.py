"""A provider of your own, plugged in by TIERLINE_PROVIDER_PLUGINS: known to every part through the catalogue."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from core.validation import Accepted, Rejected, validate
from streams.settings import Settings, SettingsError

GATEWAY = {"TIERLINE_PROVIDER_PLUGINS": "tests.gateway:spec"}
CLAUDE = {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def test_a_plug_in_is_a_provider_like_any_other() -> None:
    settings = Settings.from_env({**GATEWAY, "TIERLINE_BATCH_MAX_ITEMS": "1000000"})
    verdict = validate(orjson.dumps({"custom_id": "g-1", "provider": "gateway", "params": CLAUDE}), settings.catalogue)
    assert isinstance(verdict, Accepted)
    assert verdict.group.provider == "gateway" and orjson.loads(verdict.line) == {"custom_id": "g-1", "params": CLAUDE}
    assert settings.caps("gateway").max_items == 10_000  # its own cap, under the setting
    assert settings.catalogue["gateway"].windows.completion_s == 12 * 3600
    bad = validate(orjson.dumps({"custom_id": "g/1", "provider": "gateway", "params": CLAUDE}), settings.catalogue)
    assert isinstance(bad, Rejected) and bad.reason == "invalid_custom_id"  # its own custom_id rule
    unknown = validate(orjson.dumps({"custom_id": "g-1", "provider": "gateway", "params": CLAUDE}),
                       Settings().catalogue)
    assert isinstance(unknown, Rejected) and unknown.reason == "unknown_provider"  # not plugged in: not known


@pytest.mark.parametrize(("plugins", "said"), [
    ("tests.nowhere:spec", "cannot be loaded"),
    ("tests.gateway:nothing", "cannot be loaded"),
    ("tests.gateway:KEYS", "is not a function"),
    ("tests.gateway:spec,tests.gateway:spec", "already known"),
])
def test_a_plug_in_that_cannot_work_stops_the_worker_at_start_saying_what_to_fix(plugins: str, said: str) -> None:
    with pytest.raises(SettingsError, match="TIERLINE_PROVIDER_PLUGINS|provider plug-in") as refused:
        Settings.from_env({"TIERLINE_PROVIDER_PLUGINS": plugins})
    assert said in str(refused.value)


def test_a_plug_in_may_not_take_a_built_in_providers_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.gateway

    real = tests.gateway.spec
    monkeypatch.setattr(tests.gateway, "spec", lambda settings: dataclasses.replace(real(settings), name="anthropic"))
    with pytest.raises(SettingsError, match="'anthropic': a provider of that name is already known"):
        Settings.from_env(GATEWAY)
