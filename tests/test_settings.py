import pytest

from streams.logs import redact
from streams.settings import Settings, SettingsError


def test_defaults_and_environment() -> None:
    s = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "acme.", "TIERLINE_BATCH_MAX_ITEMS": "10"})
    assert s.topic("requests") == "acme.requests"
    assert s.caps("anthropic").max_items == 10
    assert Settings.from_env({}).broker == "kafka://127.0.0.1:9092"
    assert Settings.from_env({}).bootstrap_servers == "127.0.0.1:9092"


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="TIERLINE_PARTITIONS"):
        Settings.from_env({"TIERLINE_PARTITIONS": "four"})


def test_every_setting_is_documented() -> None:
    for env, _default, doc in Settings.documented():
        assert env.startswith("TIERLINE_") and doc


def test_secrets_never_reach_the_logs() -> None:
    event = redact(None, "info", {"api_key": "sk-live-abcdefghijkl", "error": "bad key sk-ant-abcdefghijklmnop",
                                  "custom_id": "a"})
    assert event == {"api_key": "***", "error": "bad key ***", "custom_id": "a"}
