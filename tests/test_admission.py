"""Admission control's arithmetic: the limits as written, what waits per model, whether a batch fits."""

from __future__ import annotations

import pytest

from core.admission import Enqueued, parse_limits, parts_needed
from streams.settings import Settings, SettingsError


def test_limits_are_read_per_model_and_per_provider() -> None:
    assert parse_limits(" openai/gpt-4o-mini=90000, openai/*=2000000 ,") == {
        "openai/gpt-4o-mini": 90_000, "openai/*": 2_000_000}
    assert parse_limits("") == {}


@pytest.mark.parametrize("text", ["openai=5", "openai/gpt-4o=", "openai/gpt-4o=many", "/x=5", "openai/x=0"])
def test_a_limit_that_is_not_provider_model_tokens_is_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(SettingsError, match="TIERLINE_ENQUEUED_TOKEN_LIMITS"):
        Settings.from_env({"TIERLINE_ENQUEUED_TOKEN_LIMITS": text})


def test_a_model_without_its_own_entry_takes_its_providers() -> None:
    enqueued = Enqueued({"openai/gpt-4o-mini": 100, "openai/*": 1_000})
    assert (enqueued.limit("openai", "gpt-4o-mini"), enqueued.limit("openai", "gpt-4.1")) == (100, 1_000)
    assert enqueued.limit("anthropic", None) is None and enqueued.fits("anthropic", None, 10**9)


def test_a_batch_fits_beside_what_waits_for_its_model_only() -> None:
    enqueued = Enqueued({"openai/*": 1_000})
    enqueued.note("a", "openai", "gpt-4o-mini", 600)
    enqueued.note("b", "openai", "gpt-4.1", 900)
    assert enqueued.fits("openai", "gpt-4o-mini", 400) and not enqueued.fits("openai", "gpt-4o-mini", 401)
    assert enqueued.fits("openai", "gpt-4o-mini", 1_000, batch_key="a")  # itself is not counted twice
    enqueued.forget("a")
    assert enqueued.waiting("openai", "gpt-4o-mini") == 0 and enqueued.fits("openai", "gpt-4o-mini", 1_000)


def test_a_batch_larger_than_the_limit_is_split_into_parts_that_fit() -> None:
    assert parts_needed(2_500, 1_000, 300) == 3
    assert parts_needed(999, 1_000, 300) == 1
    assert parts_needed(10**9, 1_000, 7) == 7  # never more parts than items
