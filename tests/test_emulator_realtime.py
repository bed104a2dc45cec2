"""The emulator's synchronous endpoints through the official SDKs: whole, streamed, failing, rate limited."""

from __future__ import annotations

import time
from typing import Iterator

import anthropic
import openai
import pytest

from emulator.realtime_api import RateLimit, tokens_of
from streams.local.stack import free_port, running, tierline_argv

QUESTION = "Which tide pools on the Oregon coast are best at low tide in winter?"


def clients(port: int, retries: int = 2) -> tuple[anthropic.Anthropic, openai.OpenAI]:
    return (anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="k", max_retries=retries),
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=retries))


def ask(text: str = QUESTION) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_the_rate_limit_replenishes_steadily_and_says_how_long_to_wait() -> None:
    now = [0.0]
    limit = RateLimit(120, lambda: now[0])  # two a second
    assert limit.admit() is None and limit.admit() is None
    assert limit.admit() == pytest.approx(0.5)
    now[0] = 0.5
    assert limit.admit() is None
    slow = RateLimit(3, lambda: now[0])  # one every 20 s
    assert slow.admit() is None and slow.admit() == pytest.approx(20.0)
    assert RateLimit(0).admit() is None


def test_streamed_pieces_are_words_with_their_spaces() -> None:
    assert list(tokens_of("Answer to: tide pools")) == ["Answer ", "to: ", "tide ", "pools"]


def test_anthropic_messages_whole_and_streamed_say_the_same(emulator_port: int) -> None:
    claude, _ = clients(emulator_port)
    whole = claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=ask())
    assert whole.content[0].text.startswith("Answer to: Which tide pools")
    assert whole.usage.input_tokens > 0 and whole.usage.output_tokens > 0

    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=ask()) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 3 and "".join(pieces) == whole.content[0].text == final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == whole.usage.output_tokens

    events = [event.type for event in claude.messages.create(model="claude-haiku-4-5", max_tokens=100,
                                                              messages=ask(), stream=True)]
    assert events[:2] == ["message_start", "content_block_start"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events.count("content_block_delta") == len(pieces)


def test_openai_chat_whole_and_streamed_say_the_same_and_embeddings_decode(emulator_port: int) -> None:
    _, gpt = clients(emulator_port)
    whole = gpt.chat.completions.create(model="gpt-4o-mini", messages=ask())
    text = whole.choices[0].message.content
    assert text.startswith("Answer to: Which tide pools") and whole.usage.completion_tokens > 0

    chunks = list(gpt.chat.completions.create(model="gpt-4o-mini", messages=ask(), stream=True,
                                              stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == whole.usage.total_tokens

    vectors = gpt.embeddings.create(model="text-embedding-3-small", input=["tide", "pool"])
    assert [len(d.embedding) for d in vectors.data] == [8, 8]  # the SDK asked for base64 and decoded it


def test_fault_markers_fail_as_the_providers_do_and_the_sdks_retry_what_is_retryable(emulator_port: int) -> None:
    claude, gpt = clients(emulator_port)
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=ask("x #emulate:errored"))
    with pytest.raises(openai.BadRequestError):
        gpt.chat.completions.create(model="gpt-4o-mini", messages=ask("x #emulate:errored"))
    # Flaky: the first attempt of this body fails retryably; the SDK's own retry gets the answer.
    assert claude.messages.create(model="claude-haiku-4-5", max_tokens=10,
                                  messages=ask(f"{time.time()} #emulate:flaky")).content[0].text
    once, _ = clients(emulator_port, retries=0)
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        once.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=ask(f"{time.time()} #emulate:flaky"))
    assert overloaded.value.status_code == 529


@pytest.fixture(scope="module")
def paced_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An emulator that takes 200 ms to a first token, 10 ms a token after, and 3 requests a minute."""
    port = free_port()
    argv = tierline_argv("emulator", "--port", str(port), "--first-token-ms", "200", "--token-ms", "10", "--rpm", "3")
    with running(argv, port, log=tmp_path_factory.mktemp("paced-emulator") / "emulator.log"):
        yield port


def test_streams_keep_their_pace_and_requests_over_the_limit_get_429_with_retry_after(paced_port: int) -> None:
    claude, gpt = clients(paced_port, retries=0)
    started = time.monotonic()
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=ask()) as stream:
        first = next(iter(stream.text_stream))
        first_at = time.monotonic() - started
        rest = list(stream.text_stream)
    assert first and first_at >= 0.2
    assert time.monotonic() - started >= 0.2 + 0.01 * len(rest)

    with pytest.raises(openai.RateLimitError) as limited:  # 3 a minute: the next one in 20 s
        gpt.chat.completions.create(model="gpt-4o-mini", messages=ask())
    assert 15 <= int(limited.value.response.headers["retry-after"]) <= 20
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=ask())
