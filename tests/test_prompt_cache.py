"""The emulator's prompt caching reports usage as the providers do: Anthropic writes, then reads, a
prefix up to its last cache_control mark if it is long enough for the model, within its ttl;
OpenAI caches a long prefix on its own, in steps of 128 tokens. On an injected clock."""

from __future__ import annotations

from emulator.prompt_cache import Cached, PromptCache
from tests.clock import Clock

GUIDE = "Our house style: short sentences, no jargon, numbers as digits. " * 100  # about 1,600 tokens


def claude(question: str, ttl: str | None = None, model: str = "claude-sonnet-4-5") -> dict:
    mark = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return {"model": model, "max_tokens": 64, "system": [{"type": "text", "text": GUIDE, "cache_control": mark}],
            "messages": [{"role": "user", "content": question}]}


def test_anthropic_writes_the_marked_prefix_once_then_reads_it_until_it_expires() -> None:
    clock = Clock()
    cache = PromptCache(clock)
    first = cache.anthropic(claude("Summarise ticket 1."))
    assert first.write > 1_024 and first.read == 0
    assert cache.anthropic(claude("Summarise ticket 2.")) == Cached(read=first.write)  # another question, same prefix
    clock.now += 299  # each read refreshes the five minutes
    assert cache.anthropic(claude("Summarise ticket 3.")).read == first.write
    clock.now += 301
    assert cache.anthropic(claude("Summarise ticket 4.")) == first  # expired: written again


def test_a_one_hour_mark_is_written_as_such_and_a_short_or_unmarked_prefix_is_not_cached() -> None:
    cache = PromptCache(Clock())
    assert cache.anthropic(claude("q", ttl="1h")).write_1h > 1_024
    short = claude("q")
    short["system"][0]["text"] = "Be brief."
    assert cache.anthropic(short) == Cached()
    assert cache.anthropic(claude("q", model="claude-haiku-4-5")) == Cached()  # Haiku 4.5 needs 4,096 tokens
    assert cache.anthropic({"model": "claude-sonnet-4-5", "system": GUIDE, "messages": []}) == Cached()


def test_openai_caches_a_long_prefix_it_has_seen_in_steps_of_128_tokens() -> None:
    cache = PromptCache(Clock())
    body = {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": GUIDE},
                                                  {"role": "user", "content": "Summarise ticket 1."}]}
    assert cache.openai(body) == 0  # first seen
    again = {**body, "messages": [body["messages"][0], {"role": "user", "content": "Summarise ticket 2."}]}
    cached = cache.openai(again)
    assert cached >= 1_024 and cached % 128 == 0
    assert cache.openai({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": GUIDE}]}) == 0  # no prefix
