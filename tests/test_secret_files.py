"""NAME_FILE: a setting or a provider's key read from a file, as compose and Kubernetes secrets hand them over."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.secret_files import read_secret_files
from streams.settings import PROVIDER_ENV, Settings, SettingsError

KNOWN = {env for env, _, _ in Settings.documented()} | set(PROVIDER_ENV)


def secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_key_a_setting_and_a_lanes_key_are_read_from_their_files_without_the_final_newline(tmp_path: Path) -> None:
    environ = {"ANTHROPIC_API_KEY_FILE": secret(tmp_path, "anthropic", "sk-ant-1\n"),
               "TIERLINE_KAFKA_SASL_PASSWORD_FILE": secret(tmp_path, "kafka", "p@ss word\r\n"),
               "GROQ_API_KEY_FILE": secret(tmp_path, "groq", "gsk-2")}
    assert read_secret_files(environ, KNOWN) == ["ANTHROPIC_API_KEY", "GROQ_API_KEY", "TIERLINE_KAFKA_SASL_PASSWORD"]
    assert environ["ANTHROPIC_API_KEY"] == "sk-ant-1"
    assert environ["GROQ_API_KEY"] == "gsk-2"
    assert Settings.from_env(environ).kafka_sasl_password == "p@ss word"


def test_files_that_are_settings_of_their_own_and_unknown_names_are_left_alone(tmp_path: Path) -> None:
    providers = secret(tmp_path, "providers.toml", "[lanes]\n")
    environ = {"TIERLINE_PROVIDERS_FILE": providers, "SOMETHING_FILE": providers, "TIERLINE_PRICES_FILE": ""}
    assert read_secret_files(environ, KNOWN) == []
    assert environ == {"TIERLINE_PROVIDERS_FILE": providers, "SOMETHING_FILE": providers, "TIERLINE_PRICES_FILE": ""}


def test_an_empty_file_leaves_the_variable_unset(tmp_path: Path) -> None:
    environ = {"OPENAI_API_KEY_FILE": secret(tmp_path, "openai", "\n")}
    assert read_secret_files(environ, KNOWN) == []
    assert "OPENAI_API_KEY" not in environ


@pytest.mark.parametrize(("environ", "said"), [
    ({"OPENAI_API_KEY": "sk-1", "OPENAI_API_KEY_FILE": "FILE"}, "OPENAI_API_KEY and OPENAI_API_KEY_FILE are both set"),
    ({"OPENAI_API_KEY_FILE": "/run/secrets/absent"},
     "OPENAI_API_KEY_FILE=/run/secrets/absent: the file cannot be read"),
])
def test_what_cannot_be_used_is_refused_with_what_to_fix(environ: dict[str, str], said: str, tmp_path: Path) -> None:
    environ = {name: value.replace("FILE", secret(tmp_path, "key", "sk-2")) for name, value in environ.items()}
    with pytest.raises(SettingsError, match=said):
        read_secret_files(environ, KNOWN)


def test_the_cli_reads_them_before_anything_and_says_what_to_fix(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIERLINE_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "missing"))
    done = CliRunner().invoke(main, ["status"])
    assert done.exit_code == 1
    assert "TIERLINE_KAFKA_SASL_PASSWORD_FILE=" in done.output and "cannot be read" in done.output
