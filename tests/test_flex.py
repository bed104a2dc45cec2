"""Flex processing's pure parts: which models offer it, and when a refused call stops waiting for it."""

from __future__ import annotations

from core.flex import fall_back_reason, offers_flex, parse_models


def test_flex_is_offered_for_the_listed_models_and_their_snapshots_only() -> None:
    assert offers_flex("openai", "o4-mini") and offers_flex("openai", "o4-mini-2025-04-16")
    assert offers_flex("openai", "gpt-5") and offers_flex("openai", "gpt-5-mini")
    assert not offers_flex("openai", "gpt-4o-mini") and not offers_flex("openai", "o3x")
    assert not offers_flex("anthropic", "o3") and not offers_flex("groq", "o3")
    assert offers_flex("openai", "gpt-4.1", parse_models(" gpt-4.1 , o3 "))


def test_a_refused_call_waits_while_the_deadline_allows_then_falls_back() -> None:
    now = 1_000.0
    assert fall_back_reason(None, now, 5, 30, refusals=1, max_refusals=10) is None
    assert fall_back_reason(now + 3600, now, 5, 30, refusals=1, max_refusals=10) is None
    reason = fall_back_reason(now + 20, now, 5, 30, refusals=1, max_refusals=10)
    assert reason is not None and "deadline leaves no time to wait" in reason
    reason = fall_back_reason(None, now, 5, 30, refusals=10, max_refusals=10)
    assert reason is not None and "refused 10 times" in reason
