"""The CLI in Kafka's conventions: -b/--broker and --topic-prefix, a .env read as compose reads it, a wrong
prefix said rather than shown as an empty table, and a suggestion for a mistyped command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from streams.cli.main import main

KAFKA_VARIABLES = ("TIERLINE_BROKER", "TIERLINE_TOPIC_PREFIX")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No Kafka variables, in an empty directory: whatever a .env sets is undone after the test (load_dotenv
    writes to os.environ itself, where monkeypatch does not see it)."""
    saved = dict(os.environ)
    for name in KAFKA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield monkeypatch
    os.environ.clear()
    os.environ.update(saved)


def test_a_mistyped_command_gets_the_closest_one() -> None:
    answer = CliRunner().invoke(main, ["stauts"])
    assert answer.exit_code == 2 and "Did you mean 'status'?" in answer.output


def test_every_command_that_talks_to_kafka_takes_broker_and_topic_prefix() -> None:
    for command in ("worker", "submit", "replay", "tail", "status", "report", "cancel"):
        said = CliRunner().invoke(main, [command, "--help"]).output
        assert "-b, --broker" in said and "--topic-prefix" in said, command


def test_a_prefix_without_topics_is_said_and_exits_1(broker_port: int, clean_env: pytest.MonkeyPatch) -> None:
    for command in (["status"], ["report"], ["cancel", "msgbatch_1"], ["tail", "results", "--limit", "1"]):
        answer = CliRunner().invoke(main, [*command, "-b", f"127.0.0.1:{broker_port}", "--topic-prefix", "nope."])
        assert answer.exit_code == 1, (command, answer.output)
        assert "no topic nope." in answer.output and "--topic-prefix" in answer.output, command


def test_a_dotenv_in_the_working_directory_counts_after_the_environment(broker_port: int, tmp_path: Path,
                                                                       clean_env: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(f"TIERLINE_BROKER=127.0.0.1:{broker_port}\nTIERLINE_TOPIC_PREFIX=fromfile.\n")
    answer = CliRunner().invoke(main, ["status"])
    assert answer.exit_code == 1 and "no topic fromfile.batches" in answer.output
    clean_env.setenv("TIERLINE_TOPIC_PREFIX", "fromenv.")  # the environment first, as compose does
    answer = CliRunner().invoke(main, ["status"])
    assert "no topic fromenv.batches" in answer.output
    answer = CliRunner().invoke(main, ["status", "--topic-prefix", "fromflag."])  # the option before both
    assert "no topic fromflag.batches" in answer.output


def test_an_address_that_cannot_be_kafka_stops_every_command_at_once_saying_why(clean_env: pytest.MonkeyPatch,
                                                                                 tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"custom_id": "a-1", "provider": "openai", "model": "gpt-4o-mini", '
                     '"body": {"messages": [{"role": "user", "content": "hi"}]}}\n')
    for command in (["status"], ["report"], ["tail", "results"], ["submit", str(items)], ["worker"]):
        # submit waits for a broker that is away; a name that does not resolve is not one
        answer = CliRunner().invoke(main, [*command, "-b", "no-such-host.invalid:9092"])
        assert answer.exit_code == 1, (command, answer.output)
        assert answer.output.startswith("cannot reach Kafka at no-such-host.invalid:9092: the name "
                                        "no-such-host.invalid does not resolve"), (command, answer.output)
