"""Request bodies checked against the providers' own request types, naming the field at fault."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from core.request_shapes import Shape, of_typeddict
from core.request_types import depth_exceeds, problem
from providers.anthropic.wire import MESSAGES
from providers.shape_cache import cache_dir, cached_check, sdk_type
from streams.settings import Settings

CATALOGUE = Settings().catalogue


def problem_in(provider: str, endpoint: str | None, model: str | None, params: dict[str, Any]) -> str | None:
    """What the provider's wire finds wrong; a Bedrock item's "endpoint" here is its job's invocation type."""
    if model is not None:
        fields = {"model": model, "invocation": "converse" if endpoint == "Converse" else "invoke"}
        return CATALOGUE[provider].wire.problem(None, fields, params)
    return CATALOGUE[provider].wire.problem(endpoint, {}, params)

CLAUDE = {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("provider", "endpoint", "model", "params"), [
    ("anthropic", None, None, CLAUDE),
    ("anthropic", None, None, {**CLAUDE, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}],
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}], "unknown_new_field": 1}),
    ("openai", "/v1/chat/completions", None, {**CHAT, "temperature": 1, "max_completion_tokens": 5}),
    ("openai", "/v1/embeddings", None, {"model": "text-embedding-3-small", "input": ["a", "b"]}),
    ("openai", "/v1/responses", None, {"model": "gpt-4o-mini", "input": "hi"}),
    ("bedrock", "Converse", "amazon.nova-lite-v1:0", {"messages": [{"role": "user", "content": [{"text": "hi"}]}],
                                                     "inferenceConfig": {"maxTokens": 5}}),
    ("bedrock", "InvokeModel", "anthropic.claude-3-5-haiku-20241022-v1:0",
     {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
    ("bedrock", "InvokeModel", "amazon.titan-text-express-v1", {"inputText": "any body: not known here"}),
])
def test_a_well_formed_body_passes(provider: str, endpoint: str | None, model: str | None, params: dict) -> None:
    assert problem_in(provider, endpoint, model, params) is None


@pytest.mark.parametrize(("provider", "endpoint", "model", "params", "fault"), [
    ("anthropic", None, None, {**CLAUDE, "max_tokens": "20"}, "max_tokens: must be an integer, not a string"),
    ("anthropic", None, None, {**CLAUDE, "max_tokens": True}, "max_tokens: must be an integer"),
    ("anthropic", None, None, {"model": "m", "max_tokens": 20}, "messages: field required"),
    ("anthropic", None, None, {**CLAUDE, "messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
    ("anthropic", None, None, {**CLAUDE, "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
     "messages.0.content.0.text: must be a string"),
    ("openai", "/v1/chat/completions", None, {**CHAT, "temperature": "1"}, "temperature: must be a number"),
    ("openai", "/v1/chat/completions", None, {"model": "m"}, "messages: field required"),
    ("openai", "/v1/embeddings", None, {"model": "m", "input": {}}, "input"),
    ("bedrock", "Converse", "m", {"messages": [{"role": "user", "content": "hi"}]},
     "messages.0.content: must be a list"),
    ("bedrock", "Converse", "m", {"messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]},
     "exactly one of"),
    ("bedrock", "InvokeModel", "anthropic.claude-3-haiku", {"max_tokens": 5, "messages": []},
     "anthropic_version: field required"),
])
def test_a_wrong_type_or_missing_field_is_named(provider: str, endpoint: str | None, model: str | None,
                                                 params: dict, fault: str) -> None:
    problem = problem_in(provider, endpoint, model, params)
    assert problem is not None and fault in problem


def test_depth_is_measured_without_recursion() -> None:
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert depth_exceeds(deep, 64) and not depth_exceeds([[[]]], 3) and depth_exceeds([[[]]], 2)


def test_warming_makes_every_providers_request_check_before_the_first_item_asks() -> None:
    from providers.anthropic.wire import messages_check
    from providers.catalogue import warm
    from providers.openai.wire import _check
    from streams.settings import Settings

    warm(Settings().catalogue)
    assert messages_check.cache_info().currsize == 1
    assert _check.cache_info().currsize >= 3  # chat completions, embeddings, responses


# -- the shapes kept between runs -------------------------------------------------------------

BAD_CLAUDE = [{**CLAUDE, "max_tokens": "20"}, {"model": "m", "max_tokens": 20},
              {**CLAUDE, "messages": [{"role": "bot", "content": "x"}]},
              {**CLAUDE, "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}]


def read_messages(reads: list[str]) -> Callable[[], Shape]:
    def read() -> Shape:
        reads.append(MESSAGES)
        return of_typeddict(sdk_type(MESSAGES))
    return read


def test_a_request_type_is_read_from_the_sdk_once_then_checked_the_same_from_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    reads: list[str] = []
    first = cached_check("anthropic", MESSAGES, read_messages(reads))
    again = cached_check("anthropic", MESSAGES, read_messages(reads))
    assert reads == [MESSAGES]  # the second came from the file
    assert [problem(again, p) for p in [CLAUDE, *BAD_CLAUDE]] == [problem(first, p) for p in [CLAUDE, *BAD_CLAUDE]]
    assert problem(again, CLAUDE) is None and all(problem(again, p) for p in BAD_CLAUDE)


@pytest.mark.parametrize("kept", [b'{"root": {"obj": "anthropic.types.Mess', b"[]",
                                  b'{"root": {"obj": "gone"}, "objects": {}}', b'{"root": {"what": 1}, "objects": {}}'])
def test_a_cache_file_cut_short_or_not_a_shape_is_read_again_from_the_sdk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: bytes) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached_check("anthropic", MESSAGES, read_messages([]))
    [path] = cache_dir().iterdir()
    path.write_bytes(kept)
    reads: list[str] = []
    check = cached_check("anthropic", MESSAGES, read_messages(reads))
    assert reads == [MESSAGES] and all(problem(check, p) for p in BAD_CLAUDE)
    cached_check("anthropic", MESSAGES, read_messages(reads))
    assert reads == [MESSAGES]  # written anew, whole


def test_with_no_cache_to_write_the_check_is_read_from_the_sdk_each_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))  # a read-only home, say
    reads: list[str] = []
    for _ in range(2):
        check = cached_check("anthropic", MESSAGES, read_messages(reads))
        assert problem(check, CLAUDE) is None and all(problem(check, p) for p in BAD_CLAUDE)
    assert reads == [MESSAGES, MESSAGES]


def test_a_second_run_checks_requests_without_importing_the_sdk(tmp_path: Path) -> None:
    """The point of the cache: ``tierline submit`` and a worker's start skip a second's import."""
    script = ("import sys\nfrom providers.openai.wire import Wire\n"
              "print(Wire().problem(None, {}, {'model': 'm', 'messages': 'hi'}), 'openai' in sys.modules)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                           cwd=Path(__file__).parents[1]).stdout.split() for _ in range(2)]
    assert runs[0][-1] == "True" and runs[1][-1] == "False"
    assert runs[0][:-1] == runs[1][:-1] and "messages" in runs[1][0]
