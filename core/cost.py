"""What an item will cost at most, what a batch did cost, and a daily budget; pure, clock injected.

Estimates are deliberately high: input tokens from the request's size (about four
bytes a token), output tokens at the request's cap (``max_tokens`` and its
per-API names; 4,096 when absent). A model the price table does not know is
priced as its provider's most expensive one, so the cap errs on the safe side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import orjson

__all__ = ["Price", "PriceTable", "DailyBudget", "bedrock_base_model", "estimate_tokens", "usage_tokens", "Tokens"]

BYTES_PER_TOKEN = 4
DEFAULT_OUTPUT_CAP = 4_096
_OUTPUT_CAPS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
DAY = 86_400


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float

    def usd(self, input_tokens: int, output_tokens: int, discount: float = 1.0) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1e6 * discount


@dataclass(frozen=True, slots=True)
class PriceTable:
    batch_discount: float
    models: dict[str, dict[str, Price]]
    _cache: dict[tuple[str, str], Price] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        doc = orjson.loads(path.read_bytes())
        models = {provider: {name: Price(p["input"], p["output"]) for name, p in table.items()
                             if not name.startswith("_")}
                  for provider, table in doc.items() if isinstance(table, dict) and not provider.startswith("_")}
        return cls(float(doc.get("batch_discount", 0.5)), models)

    def price(self, provider: str, model: str) -> Price:
        """The longest listed prefix of ``model``; unknown: the provider's most expensive."""
        cached = self._cache.get((provider, model))
        if cached is None:
            cached = self._cache[provider, model] = self._lookup(provider, model)
        return cached

    def _lookup(self, provider: str, model: str) -> Price:
        table = self.models.get(provider) or {}
        if provider == "bedrock":
            model = bedrock_base_model(model)
        matches = [name for name in table if model.startswith(name)]
        if matches:
            return table[max(matches, key=len)]
        if not table:
            raise KeyError(f"no prices for provider {provider!r}")
        return max(table.values(), key=lambda p: (p.output, p.input))

    def batch_usd(self, provider: str, model: str, input_tokens: int, output_tokens: int) -> float:
        return self.price(provider, model).usd(input_tokens, output_tokens, self.batch_discount)

    def realtime_usd(self, provider: str, model: str, input_tokens: int, output_tokens: int) -> float:
        return self.price(provider, model).usd(input_tokens, output_tokens)


_GEOGRAPHIES = frozenset({"us", "eu", "apac", "global", "jp", "au", "ca", "us-gov"})


def bedrock_base_model(model: str) -> str:
    """``anthropic.claude-...`` from a cross-region inference profile id or a model or profile ARN."""
    model = model.rsplit("/", 1)[-1]
    geography, _, rest = model.partition(".")
    return rest if geography in _GEOGRAPHIES and rest else model


class Tokens(NamedTuple):
    input: int
    output: int


def usage_tokens(usage: dict[str, Any] | None) -> Tokens:
    """The input and output tokens from a provider's usage: Anthropic's names, OpenAI's, or Bedrock Converse's."""
    if not isinstance(usage, dict):
        return Tokens(0, 0)  # none reported, or not in a shape any provider uses

    def count(*names: str) -> int:
        for name in names:
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return 0

    return Tokens(count("input_tokens", "prompt_tokens", "inputTokens"),
                  count("output_tokens", "completion_tokens", "outputTokens"))


def estimate_tokens(params: dict[str, Any], request_bytes: int, endpoint: str | None = None) -> Tokens:
    """The input and output tokens an item may use at most, from its request."""
    input_tokens = max(1, request_bytes // BYTES_PER_TOKEN)
    if endpoint == "/v1/embeddings":
        return Tokens(input_tokens, 0)
    inference = params.get("inferenceConfig")  # Bedrock Converse's
    caps = [params[k] for k in _OUTPUT_CAPS if isinstance(params.get(k), int)]
    if isinstance(inference, dict) and isinstance(inference.get("maxTokens"), int):
        caps.append(inference["maxTokens"])
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
        return self._by_day.get(self.today(), 0.0)

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
