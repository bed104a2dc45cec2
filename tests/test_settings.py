import logging
from pathlib import Path

import pytest

from streams.logs import redact
from streams.settings import Settings, SettingsError


def test_defaults_and_environment() -> None:
    s = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "acme.", "TIERLINE_BATCH_MAX_ITEMS": "10"})
    assert s.topics.requests == "acme.requests"
    assert s.caps("anthropic").max_items == 10
    assert Settings.from_env({}).broker == "kafka://127.0.0.1:9092"
    assert Settings.from_env({}).bootstrap_servers == "127.0.0.1:9092"


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="TIERLINE_PARTITIONS"):
        Settings.from_env({"TIERLINE_PARTITIONS": "four"})


def test_every_setting_is_documented() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "settings.md").read_text()
    for env, default, doc in Settings.documented():
        assert env.startswith("TIERLINE_") and doc
        assert f"| `{env}` | `{default}` | {doc} |" in page, f"docs/reference/settings.md lacks {env}: make docs"


def test_secrets_never_reach_the_logs() -> None:
    event = redact(None, "info", {"api_key": "sk-live-abcdefghijkl", "error": "bad key sk-ant-abcdefghijklmnop",
                                  "custom_id": "a"})
    assert event == {"api_key": "***", "error": "bad key ***", "custom_id": "a"}
    started = redact(None, "info", {"settings": {"callback_secrets": "whsec_b2xkb2xkb2xkb2xk", "input_tokens": 9},
                                    "said": "refused whsec_b2xkb2xkb2xkb2xk"})
    assert started == {"settings": {"callback_secrets": "***", "input_tokens": 9}, "said": "refused ***"}


def test_a_key_quoted_by_an_sdk_error_is_masked_in_the_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    import orjson
    import structlog

    from streams.logs import configure_logging

    configure_logging("info", "json")
    try:
        raise RuntimeError("Error code: 401 - invalid x-api-key sk-ant-api03-abcdefghijklmnop")
    except RuntimeError:
        structlog.get_logger("test").exception("submit_crashed", headers={"x-api-key": "k1", "accept": "json"},
                                               usage={"input_tokens": 12}, access_key="AKIAABCDEFGHIJKLMNOP")
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
    line = orjson.loads(capsys.readouterr().err)
    assert "sk-ant" not in line["exception"] and "invalid x-api-key ***" in line["exception"]
    assert line["headers"] == {"x-api-key": "***", "accept": "json"}
    assert line["usage"] == {"input_tokens": 12} and line["access_key"] == "***"


def test_library_records_take_the_same_format_and_redaction(capsys: pytest.CaptureFixture[str]) -> None:
    import orjson
    import structlog

    from streams.logs import configure_logging

    root = logging.getLogger()
    level = root.level
    configure_logging("info", "json", libraries="info")
    try:
        logging.getLogger("aiokafka.conn").warning("Unable connect to %s: Bearer sk-abcdefghijklmnop", "b:9092")
        for _ in range(50):  # a client retrying an absent broker: said once, not fifty times
            logging.getLogger("aiokafka.conn").warning("Unable connect to %s: Bearer sk-abcdefghijklmnop", "b:9093")
        logging.getLogger("faust.transport").debug("below the level: not shown")
    finally:
        structlog.reset_defaults()
        root.handlers.clear()
        root.setLevel(level)
    [line] = [orjson.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert (line["logger"], line["level"]) == ("aiokafka.conn", "warning") and "timestamp" in line
    assert line["event"] == "Unable connect to b:9092: ***"


def test_bedrock_settings_are_checked_against_what_bedrock_accepts() -> None:
    with pytest.raises(SettingsError, match="24 to 168"):
        Settings.from_env({"TIERLINE_BEDROCK_TIMEOUT_HOURS": "12"})
    with pytest.raises(SettingsError, match="every Bedrock batch would be too small"):
        Settings.from_env({"TIERLINE_BEDROCK_BUCKET": "b", "TIERLINE_BATCH_MAX_ITEMS": "50"})
    # Without Bedrock configured a small batch cap is no one's concern.
    assert Settings.from_env({"TIERLINE_BATCH_MAX_ITEMS": "50"}).caps("bedrock").min_items == 100


def test_a_yes_no_setting_takes_the_usual_words_and_refuses_others() -> None:
    assert Settings.from_env({"TIERLINE_KEEP_INPUT_FILES": "true"}).keep_input_files
    assert not Settings.from_env({"TIERLINE_KEEP_INPUT_FILES": "no"}).keep_input_files
    with pytest.raises(SettingsError, match="TIERLINE_KEEP_INPUT_FILES"):
        Settings.from_env({"TIERLINE_KEEP_INPUT_FILES": "sometimes"})


def test_openais_output_expiry_is_held_to_its_range() -> None:
    with pytest.raises(SettingsError, match="3600"):
        Settings.from_env({"TIERLINE_OPENAI_OUTPUT_EXPIRES_S": "60"})


def test_flex_calls_have_limits_of_their_own() -> None:
    settings = Settings.from_env({"TIERLINE_ASYNC_LIMITS": '{"openai": {"rpm": 60}}',
                                  "TIERLINE_FLEX_LIMITS": '{"openai/o4-mini": {"rpm": 500, "tpm": 90000}}'})
    assert settings.async_limit("openai", "o4-mini") == (60.0, 0.0)
    assert settings.async_limit("openai", "o4-mini", flex=True) == (500.0, 90000.0)
    assert settings.async_limit("openai", "o3", flex=True) == (0.0, 0.0)
    with pytest.raises(SettingsError, match="TIERLINE_FLEX_LIMITS must be JSON"):
        Settings.from_env({"TIERLINE_FLEX_LIMITS": "500 a minute"})
