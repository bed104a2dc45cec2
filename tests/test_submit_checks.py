"""``tierline submit`` says which lines the service would refuse before it publishes anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson

from streams.cli.produce import check_lines
from streams.local.stack import tierline_argv
from streams.settings import Settings

SETTINGS = Settings.from_env({"TIERLINE_KAFKA_MAX_RECORD_BYTES": "65536"})


def _item(n: int, text: str = "hi") -> bytes:
    return orjson.dumps({"custom_id": f"c-{n}", "provider": "anthropic", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}})


def test_a_line_larger_than_tierline_can_carry_is_named_with_the_limit() -> None:
    lines = [_item(1), _item(2, "x" * 62_000), _item(3), b'{"custom_id": "c-4"}']
    problems = list(check_lines(enumerate(lines, start=1), SETTINGS))
    assert [(p.number, p.reason) for p in problems] == [(2, "item_too_large"), (4, "unknown_provider")]
    assert "61,440 bytes" in problems[0].message and "TIERLINE_KAFKA_MAX_RECORD_BYTES" in problems[0].message


def test_a_line_too_large_is_not_published_even_with_allow_invalid(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b"\n".join([_item(1), b"", _item(2, "x" * 62_000)]) + b"\r\n")  # named by its line: 3
    # No broker answers on this port: the command must stop before it would connect.
    env = {**os.environ, "TIERLINE_BROKER": "kafka://127.0.0.1:9", "TIERLINE_KAFKA_MAX_RECORD_BYTES": "65536"}
    for extra in ((), ("--allow-invalid",)):
        done = subprocess.run(tierline_argv("submit", str(path), "--kafka-wait", "0", *extra), env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert f"{path}:3: item_too_large:" in done.stderr
        assert "Nothing was published." in done.stderr
