from pathlib import Path

import pytest

from core.cost import DAY, DailyBudget, PriceTable, estimate_tokens, usage_tokens

PRICES = PriceTable.load(Path(__file__).parents[1] / "streams" / "data" / "prices.json")


class Clock:
    def __init__(self) -> None:
        self.now = 10 * DAY + 100.0

    def __call__(self) -> float:
        return self.now


def test_a_model_is_priced_by_its_longest_listed_prefix_with_the_batch_discount() -> None:
    assert PRICES.price("openai", "gpt-4o-mini-2024-07-18").input == 0.15
    assert PRICES.price("openai", "gpt-4o-2024-08-06").input == 2.5
    # 1M input and 1M output tokens of gpt-4o-mini: (0.15 + 0.60) at half price
    assert PRICES.batch_usd("openai", "gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.375)


def test_an_unknown_model_is_priced_as_the_providers_most_expensive() -> None:
    assert PRICES.price("anthropic", "claude-next-9") == PRICES.price("anthropic", "claude-opus-4")


def test_estimates_take_the_output_cap_and_about_four_bytes_a_token() -> None:
    assert estimate_tokens({"max_tokens": 256}, 400) == (100, 256)
    assert estimate_tokens({"max_completion_tokens": 50}, 40) == (10, 50)
    assert estimate_tokens({}, 40) == (10, 4096)
    assert estimate_tokens({"input": "x"}, 40, "/v1/embeddings") == (10, 0)


def test_the_budget_holds_what_would_pass_the_cap_and_frees_what_actual_costs_leave() -> None:
    clock = Clock()
    budget = DailyBudget(limit_usd=1.0, clock=clock)
    assert budget.fits(0.6)
    day = budget.reserve("b1", 0.6)
    assert not budget.fits(0.6)  # 1.2 would pass the cap: held
    budget.record("b1", day, 0.6)  # its intent record, read back: no change
    assert not budget.fits(0.6)
    budget.record("b1", day, 0.2)  # ended: it cost less than estimated
    assert budget.fits(0.6)


def test_other_workers_batches_count_against_the_same_cap() -> None:
    clock = Clock()
    budget = DailyBudget(limit_usd=1.0, clock=clock)
    budget.record("theirs", budget.today(), 0.7)
    assert budget.fits(0.3) and not budget.fits(0.4)
    budget.record("old", budget.today() - 1, 5.0)  # yesterday's spend does not count today
    assert budget.fits(0.3)


def test_a_new_day_starts_a_new_budget_and_no_limit_means_no_cap() -> None:
    clock = Clock()
    budget = DailyBudget(limit_usd=1.0, clock=clock)
    budget.reserve("b1", 1.0)
    assert not budget.fits(0.1)
    clock.now += DAY
    assert budget.fits(0.9) and budget.spent() == 0.0
    assert DailyBudget(limit_usd=0, clock=clock).fits(1e9)


def test_a_bedrock_model_is_priced_whatever_the_region_prefix_or_arn() -> None:
    haiku = PRICES.price("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0")
    assert haiku.input == 0.8
    assert PRICES.price("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0") == haiku
    arn = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-5-haiku-20241022-v1:0"
    assert PRICES.price("bedrock", arn) == haiku
    assert PRICES.price("bedrock", "us.amazon.nova-lite-v1:0").input == 0.06


def test_converse_usage_and_output_cap_are_read_too() -> None:
    assert usage_tokens({"inputTokens": 12, "outputTokens": 34, "totalTokens": 46}) == (12, 34)
    assert estimate_tokens({"inferenceConfig": {"maxTokens": 300}}, 400) == (100, 300)
