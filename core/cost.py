"""What an item will cost at most, what a batch did cost, and a daily budget; pure, clock injected.

Estimates are deliberately high: input tokens from the request's size (about four
bytes a token), output tokens at the request's cap (``max_tokens`` and its
per-API names; 4,096 when absent). A model the price table does not know is priced
from the maintained ``genai-prices`` data (its base rates, below any long-context tier);
one neither knows, as its provider's most expensive, so the cap errs on the safe side.

A cost is priced from the tokens as they are billed (``Billed``): prompt-cache writes (Anthropic's
five-minute and one-hour ones) and reads at their own rates, plain input, and output (reasoning
included, as the providers bill it). The batch discount applies to all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

import orjson

from core.spec import Pricing

__all__ = ["Billed", "Price", "PriceTable", "DailyBudget", "billed_tokens", "estimate_tokens",
           "usage_tokens", "Tokens"]

BYTES_PER_TOKEN = 4
DEFAULT_OUTPUT_CAP = 4_096
_OUTPUT_CAPS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
DAY = 86_400


class Billed(NamedTuple):
    """An answer's tokens by the rate each is billed at."""

    input: int  # read at the input rate: not from the cache, not written to it
    output: int  # reasoning included
    cache_write: int = 0  # written to the prompt cache (Anthropic's five-minute cache)
    cache_write_1h: int = 0  # written to Anthropic's one-hour cache
    cache_read: int = 0  # read from the prompt cache
    reasoning: int = 0  # of ``output``: shown, not billed apart

    @property
    def cached(self) -> int:
        return self.cache_write + self.cache_write_1h + self.cache_read

    @property
    def read(self) -> int:
        """Every input token the answer read, from the prompt cache or not."""
        return self.input + self.cached


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens, at each rate."""

    input: float
    output: float
    cache_write: float
    cache_write_1h: float
    cache_read: float

    @classmethod
    def of(cls, input: float, output: float, multiples: dict[str, float], cache_write: float | None = None,
           cache_write_1h: float | None = None, cache_read: float | None = None) -> Price:
        """A price whose cache rates, where not given, are ``multiples`` of its input rate."""
        return cls(input, output,
                   input * multiples["write"] if cache_write is None else cache_write,
                   input * multiples["write_1h"] if cache_write_1h is None else cache_write_1h,
                   input * multiples["read"] if cache_read is None else cache_read)

    def usd(self, tokens: Billed, discount: float = 1.0) -> float:
        return (tokens.input * self.input + tokens.output * self.output + tokens.cache_write * self.cache_write
                + tokens.cache_write_1h * self.cache_write_1h + tokens.cache_read * self.cache_read) / 1e6 * discount


#: Cache rates as multiples of the input rate, where a model's entry does not name its own.
CACHE_MULTIPLES = {"write": 1.25, "write_1h": 2.0, "read": 0.1}


@dataclass(frozen=True, slots=True)
class PriceTable:
    batch_discount: float
    models: dict[str, dict[str, Price]]
    #: How each provider's models are priced (its spec's ``pricing``); a provider not here, from its own table.
    pricing: Mapping[str, Pricing] = field(default_factory=dict)
    _cache: dict[tuple[str, str], Price] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path, pricing: Mapping[str, Pricing] | None = None) -> PriceTable:
        doc = orjson.loads(path.read_bytes())
        models = {provider: _prices(table)
                  for provider, table in doc.items() if isinstance(table, dict) and not provider.startswith("_")}
        return cls(float(doc.get("batch_discount", 0.5)), models, pricing or {})

    def price(self, provider: str, model: str) -> Price:
        """The longest listed prefix of ``model``; unknown: the provider's most expensive."""
        cached = self._cache.get((provider, model))
        if cached is None:
            cached = self._cache[provider, model] = self._lookup(provider, model)
        return cached

    def _lookup(self, provider: str, model: str) -> Price:
        how = self.pricing.get(provider) or Pricing(provider)  # a declared lane's models may be another table's
        table, model = self.models.get(how.table) or {}, how.model_of(model)
        matches = [name for name in table if model.startswith(name)]
        if matches:
            return table[max(matches, key=len)]
        if how.maintained is not None and (maintained := maintained_price(how.maintained, model)) is not None:
            return maintained
        if not table:
            raise KeyError(f"no prices for provider {provider!r}")
        return max(table.values(), key=lambda p: (p.output, p.input))

    def batch_usd(self, provider: str, model: str, tokens: Billed) -> float:
        return self.price(provider, model).usd(tokens, self.batch_discount)

    def realtime_usd(self, provider: str, model: str, tokens: Billed) -> float:
        return self.price(provider, model).usd(tokens)


def maintained_price(provider_id: str, model: str) -> Price | None:
    """``model``'s list prices from the ``genai-prices`` package's data, if it knows the model: the base
    rate of each (a tiered price's first tier), cache rates at ``CACHE_MULTIPLES`` where it lists none.

    The package is imported here, when a model the price table does not name is first priced: its data
    takes about 7 MB of a worker's memory that most never need."""
    import genai_prices
    from genai_prices.types import TieredPrices

    if not model:
        return None
    try:
        found = genai_prices.calc_price(genai_prices.Usage(input_tokens=1, output_tokens=1), model,
                                        provider_id=provider_id).model_price
    except LookupError:
        return None

    def rate(name: str) -> float | None:
        value = getattr(found, name, None)
        if isinstance(value, TieredPrices):
            value = value.base
        return float(value) if isinstance(value, Decimal) else None

    given = rate("input_mtok")
    if given is None:
        return None
    return Price.of(given, rate("output_mtok") or 0.0, CACHE_MULTIPLES, rate("cache_write_mtok") or None,
                    rate("cache_write_1h_mtok") or None, rate("cache_read_mtok") or None)


def _prices(table: dict[str, Any]) -> dict[str, Price]:
    """A provider's models; cache rates default to its ``_cache_multiples`` of the input rate."""
    multiples = {**CACHE_MULTIPLES, **(table.get("_cache_multiples") or {})}
    return {name: Price.of(p["input"], p["output"], multiples, p.get("cache_write"), p.get("cache_write_1h"),
                           p.get("cache_read"))
            for name, p in table.items() if not name.startswith("_")}


class Tokens(NamedTuple):
    input: int
    output: int


def billed_tokens(usage: dict[str, Any] | None) -> Billed:
    """An answer's tokens by rate, from its provider's usage: Anthropic's (cache counts apart from
    ``input_tokens``), OpenAI's chat and responses and Gemini's ``usageMetadata`` (cached tokens within the
    prompt's), or Bedrock Converse's."""
    if not isinstance(usage, dict):
        return Billed(0, 0)  # none reported, or not in a shape any provider uses
    get = usage.get
    if "prompt_tokens" in usage or "input_tokens_details" in usage:  # OpenAI: cached tokens are part of the input
        prompt = _count(get("prompt_tokens")) or _count(get("input_tokens"))
        cached = min(prompt, _count(_part(usage, "prompt_tokens_details", "input_tokens_details").get("cached_tokens")))
        reasoning = _count(_part(usage, "completion_tokens_details", "output_tokens_details").get("reasoning_tokens"))
        return Billed(prompt - cached, _count(get("completion_tokens")) or _count(get("output_tokens")),
                      cache_read=cached, reasoning=reasoning)
    if "promptTokenCount" in usage:  # Gemini: cached tokens are part of the prompt's; thoughts are billed as output
        prompt = _count(get("promptTokenCount"))
        cached = min(prompt, _count(get("cachedContentTokenCount")))
        thoughts = _count(get("thoughtsTokenCount"))
        return Billed(prompt - cached, _count(get("candidatesTokenCount")) + thoughts, cache_read=cached,
                      reasoning=thoughts)
    if "inputTokens" in usage:  # Bedrock Converse
        return Billed(_count(get("inputTokens")), _count(get("outputTokens")),
                      cache_write=_count(get("cacheWriteInputTokens")), cache_read=_count(get("cacheReadInputTokens")))
    written = _count(get("cache_creation_input_tokens"))
    hour = min(written, _count(_part(usage, "cache_creation").get("ephemeral_1h_input_tokens")))
    return Billed(_count(get("input_tokens")), _count(get("output_tokens")), cache_write=written - hour,
                  cache_write_1h=hour, cache_read=_count(get("cache_read_input_tokens")))


def usage_tokens(usage: dict[str, Any] | None) -> Tokens:
    """The input tokens an answer read (cached or not) and its output tokens, for showing."""
    billed = billed_tokens(usage)
    return Tokens(billed.read, billed.output)


def _part(usage: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        if isinstance(part := usage.get(name), dict):
            return part
    return {}


def _count(value: Any) -> int:
    """A token count as the usage gives it: a positive integer, or nothing (0)."""
    return value if type(value) is int and value > 0 else 0  # bool is an int subclass: not a count


def estimate_tokens(params: dict[str, Any], request_bytes: int, endpoint: str | None = None) -> Tokens:
    """The input and output tokens an item may use at most, from its request."""
    input_tokens = max(1, request_bytes // BYTES_PER_TOKEN)
    if endpoint == "/v1/embeddings":
        return Tokens(input_tokens, 0)
    caps = [params[k] for k in _OUTPUT_CAPS if isinstance(params.get(k), int)]
    # Bedrock Converse's and Gemini's caps, inside their configs
    for config, name in (("inferenceConfig", "maxTokens"), ("generationConfig", "maxOutputTokens")):
        if isinstance(inner := params.get(config), dict) and isinstance(inner.get(name), int):
            caps.append(inner[name])
    return Tokens(input_tokens, max(caps) if caps else DEFAULT_OUTPUT_CAP)


@dataclass(slots=True)
class DailyBudget:
    """Spend per UTC day against a limit, over every worker's batches.

    Each batch counts once, on the day it was let through: its estimate until it has ended,
    then its actual cost (nothing if the provider refused it). ``record`` takes what the
    batch records on Kafka say, whichever worker wrote them; ``reserve`` counts a batch this
    worker is letting through before its record is there to say so.
    """

    limit_usd: float  # 0: no limit
    clock: Callable[[], float]
    _batches: dict[str, tuple[int, float]] = field(default_factory=dict)
    _by_day: dict[int, float] = field(default_factory=dict)

    def today(self) -> int:
        return int(self.clock() // DAY)

    def spent(self) -> float:
        return self.spent_on(self.today())

    def spent_on(self, day: int) -> float:
        return self._by_day.get(day, 0.0)

    def counted(self, batch_key: str) -> tuple[int, float] | None:
        """The day a batch counts on and what it counts for, if it counts at all."""
        return self._batches.get(batch_key)

    def fits(self, usd: float) -> bool:
        return not self.limit_usd or self.spent() + usd <= self.limit_usd

    def reserve(self, batch_key: str, usd: float) -> int:
        """Count a batch being let through now; return its day."""
        day = self.today()
        self.record(batch_key, day, usd)
        return day

    def record(self, batch_key: str, day: int, usd: float) -> None:
        """What a batch counts for now (its record replaces any earlier figure for it)."""
        old_day, old_usd = self._batches.get(batch_key, (day, 0.0))
        self._by_day[old_day] = self._by_day.get(old_day, 0.0) - old_usd
        self._batches[batch_key] = (day, usd)
        self._by_day[day] = self._by_day.get(day, 0.0) + usd
