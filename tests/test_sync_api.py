"""Where the realtime and async tiers call the providers (each spec's upstream), with the SDKs' own variables."""

from __future__ import annotations

import pytest

from typing import Mapping

from core.spec import Upstream
from streams.settings import Settings


def upstream(provider: str, path: str, incoming: Mapping[str, str] | None = None) -> Upstream:
    spec = Settings().catalogue[provider]
    assert spec.upstream is not None
    return spec.upstream(path, incoming or {}, "")

SDK_VARIABLES = ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_BASE_URL",
                 "OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SDK_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_with_nothing_set_these_are_the_real_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-oa-1")
    claude = upstream("anthropic", "/v1/messages", {"anthropic-beta": "files-api-2025-04-14"})
    assert claude.url == "https://api.anthropic.com/v1/messages"
    assert claude.headers["x-api-key"] == "sk-ant-1" and claude.headers["anthropic-beta"] == "files-api-2025-04-14"
    gpt = upstream("openai", "/v1/chat/completions")
    assert gpt.url == "https://api.openai.com/v1/chat/completions"
    assert gpt.headers["authorization"] == "Bearer sk-oa-1" and "openai-organization" not in gpt.headers


def test_the_sdks_other_variables_count_as_they_do_for_the_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "gateway-token")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-oa-1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-42")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_7")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://gateway.internal/openai/v1/")
    claude = upstream("anthropic", "/v1/messages")
    assert claude.headers["authorization"] == "Bearer gateway-token" and "x-api-key" not in claude.headers
    gpt = upstream("openai", "/v1/embeddings")
    assert gpt.url == "https://gateway.internal/openai/v1/embeddings"
    assert (gpt.headers["openai-organization"], gpt.headers["openai-project"]) == ("org-42", "proj_7")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-1")  # an API key, when there is one, goes first
    assert upstream("anthropic", "/v1/messages").headers["x-api-key"] == "sk-ant-1"
