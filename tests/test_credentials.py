"""Which providers' credentials a worker holds: said when it starts, never a reason to be unready."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.credentials import credentials
from streams.settings import Settings


def test_each_missing_key_is_named_with_the_variable_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GROQ_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    declared = tmp_path / "providers.toml"
    declared.write_text('[providers.groq]\nkind = "openai-compatible"\nbase_url = "http://127.0.0.1:1/v1"\n'
                        'api_key_env = "GROQ_KEY"\n')
    settings = Settings.from_env({"TIERLINE_PROVIDERS_FILE": str(declared)})
    found = credentials(settings.catalogue)
    assert found["openai"] is None
    assert found["anthropic"] == "set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN"
    assert found["gemini"] == "set GEMINI_API_KEY or GOOGLE_API_KEY"
    assert found["groq"] == "set GROQ_KEY"
    assert "bedrock" not in found  # not set up: not asked
    monkeypatch.setenv("GOOGLE_API_KEY", "g")
    assert credentials(settings.catalogue)["gemini"] is None


def test_bedrock_takes_boto3s_credentials_when_it_is_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    found = credentials(Settings.from_env({"TIERLINE_BEDROCK_BUCKET": "b", "TIERLINE_BEDROCK_ROLE_ARN":
                                           "arn:aws:iam::123456789012:role/r"}).catalogue)
    assert found["bedrock"] is None
