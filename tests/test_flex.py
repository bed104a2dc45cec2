"""Flex processing's pure parts: which models offer it, and when a refused call stops waiting for it."""

from __future__ import annotations

from core.flex import fall_back_reason
from streams.settings import Settings


def test_flex_is_offered_for_the_listed_models_and_their_snapshots_only() -> None:
    openai, anthropic = Settings().catalogue["openai"], Settings().catalogue["anthropic"]
    assert openai.offers_flex("o4-mini") and openai.offers_flex("o4-mini-2025-04-16")
    assert openai.offers_flex("gpt-5") and openai.offers_flex("gpt-5-mini")
    assert not openai.offers_flex("gpt-4o-mini") and not openai.offers_flex("o3x")
    assert not anthropic.offers_flex("o3")
    assert Settings(flex_models=" gpt-4.1 , o3 ").catalogue["openai"].offers_flex("gpt-4.1")


def test_a_refused_call_waits_while_the_deadline_allows_then_falls_back() -> None:
    now = 1_000.0
    assert fall_back_reason(None, now, 5, 30, refusals=1, max_refusals=10) is None
    assert fall_back_reason(now + 3600, now, 5, 30, refusals=1, max_refusals=10) is None
    reason = fall_back_reason(now + 20, now, 5, 30, refusals=1, max_refusals=10)
    assert reason is not None and "deadline leaves no time to wait" in reason
    reason = fall_back_reason(None, now, 5, 30, refusals=10, max_refusals=10)
    assert reason is not None and "refused 10 times" in reason
