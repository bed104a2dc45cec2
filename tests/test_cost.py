from pathlib import Path

import pytest

from core.cost import DAY, Billed, DailyBudget, PriceTable, billed_tokens, estimate_tokens, usage_tokens
from tests.clock import Clock
from streams.settings import Settings

PRICING = Settings().catalogue.pricing()  # each provider's, as its spec says
PRICES = PriceTable.load(Path(__file__).parents[1] / "streams" / "data" / "prices.json", PRICING)


def test_a_model_is_priced_by_its_longest_listed_prefix_with_the_batch_discount() -> None:
    assert PRICES.price("openai", "gpt-4o-mini-2024-07-18").input == 0.15
    assert PRICES.price("openai", "gpt-4o-2024-08-06").input == 2.5
    # 1M input and 1M output tokens of gpt-4o-mini: (0.15 + 0.60) at half price
    assert PRICES.batch_usd("openai", "gpt-4o-mini", Billed(1_000_000, 1_000_000)) == pytest.approx(0.375)


def test_an_unknown_model_is_priced_as_the_providers_most_expensive() -> None:
    assert PRICES.price("anthropic", "claude-next-9") == PRICES.price("anthropic", "claude-opus-4")


def test_estimates_take_the_output_cap_and_about_four_bytes_a_token() -> None:
    assert estimate_tokens({"max_tokens": 256}, 400) == (100, 256)
    assert estimate_tokens({"max_completion_tokens": 50}, 40) == (10, 50)
    assert estimate_tokens({}, 40) == (10, 4096)
    assert estimate_tokens({"input": "x"}, 40, "/v1/embeddings") == (10, 0)


def test_the_budget_holds_what_would_pass_the_cap_and_frees_what_actual_costs_leave() -> None:
    clock = Clock(10 * DAY + 100.0)
    budget = DailyBudget(limit_usd=1.0, clock=clock)
    assert budget.fits(0.6)
    day = budget.reserve("b1", 0.6)
    assert not budget.fits(0.6)  # 1.2 would pass the cap: held
    budget.record("b1", day, 0.6)  # its intent record, read back: no change
    assert not budget.fits(0.6)
    budget.record("b1", day, 0.2)  # ended: it cost less than estimated
    assert budget.fits(0.6)


def test_other_workers_batches_count_against_the_same_cap() -> None:
    clock = Clock(10 * DAY + 100.0)
    budget = DailyBudget(limit_usd=1.0, clock=clock)
    budget.record("theirs", budget.today(), 0.7)
    assert budget.fits(0.3) and not budget.fits(0.4)
    budget.record("old", budget.today() - 1, 5.0)  # yesterday's spend does not count today
    assert budget.fits(0.3)


def test_a_new_day_starts_a_new_budget_and_no_limit_means_no_cap() -> None:
    clock = Clock(10 * DAY + 100.0)
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


# Prompt caching, at the providers' published rates: Claude Sonnet 4 $3 input, $3.75 five-minute cache
# writes, $6 one-hour writes, $0.30 cache reads, $15 output per million tokens; gpt-4o-mini's cached
# input $0.075 (half its $0.15), o4-mini's $0.275 (a quarter of its $1.10). The batch discount stacks.

def test_anthropic_cache_writes_and_reads_are_priced_at_their_own_rates_and_the_batch_discount_stacks() -> None:
    usage = {"input_tokens": 500, "cache_creation_input_tokens": 10_000, "cache_read_input_tokens": 100_000,
             "output_tokens": 1_000}
    tokens = billed_tokens(usage)
    assert tokens == Billed(500, 1_000, cache_write=10_000, cache_read=100_000)
    # 500 × 3 + 10,000 × 3.75 + 100,000 × 0.30 + 1,000 × 15 = 84,000 per million
    assert PRICES.realtime_usd("anthropic", "claude-sonnet-4-5", tokens) == pytest.approx(0.084)
    assert PRICES.batch_usd("anthropic", "claude-sonnet-4-5", tokens) == pytest.approx(0.042)
    # Priced as plain input, these 110,500 input tokens and the output would have cost 0.3315 + 0.015 = $0.3465.
    assert usage_tokens(usage) == (110_500, 1_000)


def test_anthropic_one_hour_cache_writes_cost_twice_the_input_rate() -> None:
    usage = {"input_tokens": 500, "cache_creation_input_tokens": 10_000, "output_tokens": 1_000,
             "cache_creation": {"ephemeral_5m_input_tokens": 4_000, "ephemeral_1h_input_tokens": 6_000}}
    tokens = billed_tokens(usage)
    assert (tokens.cache_write, tokens.cache_write_1h) == (4_000, 6_000)
    # 500 × 3 + 4,000 × 3.75 + 6,000 × 6 + 1,000 × 15 = 67,500 per million
    assert PRICES.realtime_usd("anthropic", "claude-sonnet-4-5", tokens) == pytest.approx(0.0675)


def test_openai_cached_tokens_are_part_of_the_prompt_and_priced_at_the_cached_rate() -> None:
    # The usage of OpenAI's prompt-caching guide: 1,920 of 2,006 prompt tokens from the cache.
    usage = {"prompt_tokens": 2_006, "completion_tokens": 300, "total_tokens": 2_306,
             "prompt_tokens_details": {"cached_tokens": 1_920},
             "completion_tokens_details": {"reasoning_tokens": 0}}
    tokens = billed_tokens(usage)
    assert tokens == Billed(86, 300, cache_read=1_920)
    # 86 × 0.15 + 1,920 × 0.075 + 300 × 0.60 = 336.9 per million
    assert PRICES.realtime_usd("openai", "gpt-4o-mini", tokens) == pytest.approx(336.9e-6)
    assert usage_tokens(usage) == (2_006, 300)


def test_gemini_usage_metadata_counts_cached_tokens_within_the_prompt_and_thoughts_as_output() -> None:
    usage = {"promptTokenCount": 10_000, "cachedContentTokenCount": 8_000, "candidatesTokenCount": 500,
             "thoughtsTokenCount": 1_500, "totalTokenCount": 12_000}
    tokens = billed_tokens(usage)
    assert tokens == Billed(2_000, 2_000, cache_read=8_000, reasoning=1_500)
    # 2,000 × 0.30 + 8,000 × 0.03 + 2,000 × 2.50 = 5,840 per million; half in a batch
    assert PRICES.realtime_usd("gemini", "gemini-2.5-flash", tokens) == pytest.approx(5_840e-6)
    assert PRICES.batch_usd("gemini", "gemini-2.5-flash", tokens) == pytest.approx(2_920e-6)
    assert estimate_tokens({"generationConfig": {"maxOutputTokens": 77}}, 400).output == 77


def test_reasoning_tokens_are_billed_as_the_output_they_are_part_of() -> None:
    usage = {"input_tokens": 2_006, "input_tokens_details": {"cached_tokens": 1_920}, "output_tokens": 300,
             "output_tokens_details": {"reasoning_tokens": 128}}  # the Responses API's names
    tokens = billed_tokens(usage)
    assert tokens == Billed(86, 300, cache_read=1_920, reasoning=128)
    # 86 × 1.10 + 1,920 × 0.275 + 300 × 4.40 = 1,942.6 per million
    assert PRICES.realtime_usd("openai", "o4-mini", tokens) == pytest.approx(1942.6e-6)


def test_bedrock_converse_cache_counts_are_apart_from_its_input_tokens() -> None:
    usage = {"inputTokens": 500, "outputTokens": 1_000, "cacheReadInputTokens": 100_000,
             "cacheWriteInputTokens": 10_000, "totalTokens": 111_500}
    tokens = billed_tokens(usage)
    assert tokens == Billed(500, 1_000, cache_write=10_000, cache_read=100_000)
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert PRICES.realtime_usd("bedrock", model, tokens) == pytest.approx(0.084)


def test_a_price_file_may_name_a_models_own_cache_rates(tmp_path: Path) -> None:
    own = tmp_path / "prices.json"
    own.write_text('{"batch_discount": 0.5, "anthropic": {"claude-x": {"input": 2.0, "output": 10.0, '
                   '"cache_read": 0.5}}}')
    price = PriceTable.load(own, PRICING).price("anthropic", "claude-x")
    assert (price.cache_write, price.cache_write_1h, price.cache_read) == (2.5, 4.0, 0.5)


def test_a_model_the_table_lacks_is_priced_from_the_maintained_genai_prices_data() -> None:
    gpt5 = PRICES.price("openai", "gpt-5-mini")  # not in the shipped table
    assert (gpt5.input, gpt5.output, gpt5.cache_read) == (0.25, 2.0, 0.025)
    nova = PRICES.price("bedrock", "us.amazon.nova-premier-v1:0")  # its region prefix dropped first
    assert (nova.input, nova.output) == (2.5, 12.5)
    assert PRICES.price("openai", "gpt-4o-mini").input == 0.15  # the local table still decides what it names


def test_a_local_price_file_overrides_the_maintained_data(tmp_path: Path) -> None:
    own = tmp_path / "prices.json"
    own.write_text('{"batch_discount": 0.5, "openai": {"gpt-5-mini": {"input": 0.2, "output": 1.6}}}')
    assert PriceTable.load(own, PRICING).price("openai", "gpt-5-mini-2025-08-07").input == 0.2
