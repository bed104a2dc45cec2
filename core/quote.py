"""What a file of work items would cost before it is published (``tierline submit --quote``); pure.

Each item is estimated as the worker estimates it when it reserves the daily budget (``core.cost.estimate_tokens``:
its request's bytes for input, its output cap for output, so the cost is an upper bound), routed by the same
router, and placed in batches by the same window (``core.window.BatchWindow``, every item arriving at once);
each batch's input tokens are what the enqueued-token limits weigh (``core.admission``). Nothing here knows of
Kafka: what was spent today already is not counted.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable

from core.admission import Enqueued, parts_needed
from core.cost import BYTES_PER_TOKEN, Billed, PriceTable, estimate_tokens
from core.routing import TierTimes, needs_of, route
from core.spec import Catalogue
from core.validation import Accepted
from core.window import BatchWindow, OpenBatch
from schemas import RunKey

__all__ = ["QuoteLine", "Quote", "quote"]

Group = tuple[str, str, str]  # tier, provider, model


@dataclass(slots=True)
class QuoteLine:
    """Items of one tier, provider and model: the batches they form, their tokens at most, and their cost."""

    items: int = 0
    input_tokens: int = 0
    output_tokens: int = 0  # at most: each item's output cap
    cost_usd: float = 0.0  # at the tier's price: batch and flex at batch prices
    realtime_usd: float = 0.0
    batch_keys: set[str] = field(default_factory=set, repr=False)  # an Anthropic batch may hold several models

    @property
    def batches(self) -> int:
        return len(self.batch_keys)

    @property
    def saved_usd(self) -> float:
        return self.realtime_usd - self.cost_usd

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "batches": self.batches, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cost_usd": round(self.cost_usd, 6),
                "realtime_usd": round(self.realtime_usd, 6), "saved_usd": round(self.saved_usd, 6)}


@dataclass(slots=True)
class Quote:
    lines: dict[Group, QuoteLine] = field(default_factory=dict)
    batches: int = 0
    #: Lines whose custom_id came before in the file (or, for a re-run, whose custom_id is in the same open
    #: batch): the worker runs one of them.
    repeated: int = 0
    daily_budget_usd: float = 0.0
    #: Batches, and their estimate, past the daily budget: they would wait for another day.
    over_budget_batches: int = 0
    over_budget_usd: float = 0.0
    #: Per provider/model with an enqueued-token limit: batches that would wait for earlier ones to end, and
    #: batches split for being larger than the limit on their own.
    queued: dict[str, dict[str, int]] = field(default_factory=dict)

    def total(self) -> QuoteLine:
        total = QuoteLine()
        for line in self.lines.values():
            for name in ("items", "input_tokens", "output_tokens", "cost_usd", "realtime_usd"):
                setattr(total, name, getattr(total, name) + getattr(line, name))
            total.batch_keys |= line.batch_keys
        return total

    def rows(self) -> list[tuple[Group, QuoteLine]]:
        return sorted(self.lines.items(), key=lambda row: (-row[1].cost_usd, row[0]))

    def as_dict(self) -> dict[str, Any]:
        return {"groups": [{"tier": t, "provider": p, "model": m, **line.as_dict()} for (t, p, m), line in self.rows()],
                "batches": self.batches,
                "total": self.total().as_dict(),
                "repeated": self.repeated, "daily_budget_usd": self.daily_budget_usd,
                "over_budget_batches": self.over_budget_batches, "over_budget_usd": round(self.over_budget_usd, 6),
                "enqueued_limits": self.queued}


def quote(accepted: Iterable[Accepted], catalogue: Catalogue, prices: PriceTable, max_wait_s: float,
          times: TierTimes, now: float, daily_budget_usd: float = 0.0, enqueued: Enqueued | None = None) -> Quote:
    """The quote of these items, were they all published ``now``, in batches at ``catalogue``'s caps."""
    result = Quote(daily_budget_usd=daily_budget_usd)
    keys = itertools.count()
    window = BatchWindow(catalogue.caps, max_wait_s, lambda: now, lambda group: f"q{next(keys)}")
    usd_of: dict[str, float] = {}  # batch key → its items' estimate
    closed: list[OpenBatch] = []
    seen: set[RunKey] = set()
    for item in accepted:
        work, group = item.item, item.group
        if work.run_key in seen:  # the worker skips it as a duplicate
            result.repeated += 1
            continue
        seen.add(work.run_key)
        model = group.model or str(work.params.get("model", ""))
        tokens = Billed(*estimate_tokens(work.params, len(item.line), work.endpoint))
        needs = needs_of(work, now, now, catalogue[work.provider].flex_models)
        tier = "batch" if needs is None else route(needs, times).tier
        full = prices.realtime_usd(work.provider, model, tokens)
        cost = prices.batch_usd(work.provider, model, tokens) if tier in ("batch", "flex") else full
        key = None
        if tier == "batch":
            placed = window.add(group, work.custom_id, len(item.line) + 1)
            closed += placed.closed
            if (key := placed.batch_key) is None:  # its custom_id in the same open batch: the first one stands
                result.repeated += 1
                continue
            usd_of[key] = usd_of.get(key, 0.0) + cost
        line = result.lines.setdefault((tier, work.provider, model), QuoteLine())
        if key is not None:
            line.batch_keys.add(key)
        line.items += 1
        line.input_tokens += tokens.input
        line.output_tokens += tokens.output
        line.cost_usd += cost
        line.realtime_usd += full
    closed += window.open_batches()
    result.batches = len(closed)
    _hold_back(result, closed, usd_of, enqueued)
    return result


def _hold_back(result: Quote, batches: list[OpenBatch], usd_of: dict[str, float], enqueued: Enqueued | None) -> None:
    """What the daily budget and the enqueued-token limits would hold back, the batches taken in order after the
    file's calls in other tiers (made as they arrive, before any batch closes: the same budget pays for them)."""
    spent = sum(line.cost_usd for (tier, _, _), line in result.lines.items() if tier != "batch")
    waiting: dict[str, int] = {}
    for batch in batches:
        usd = usd_of.get(batch.key, 0.0)
        if result.daily_budget_usd and spent + usd > result.daily_budget_usd:
            result.over_budget_batches += 1
            result.over_budget_usd += usd
        else:
            spent += usd
        limit = enqueued.limit(batch.group.provider, batch.group.model) if enqueued is not None else None
        if limit is None:
            continue
        key, tokens = f"{batch.group.provider}/{batch.group.model or '*'}", batch.size_bytes // BYTES_PER_TOKEN
        counts = result.queued.setdefault(key, {"limit": limit, "batches": 0, "split": 0, "wait": 0, "never": 0})
        counts["batches"] += 1
        if tokens > limit and batch.count == 1:  # as the submitter: held until the limit is raised
            counts["never"] += 1
            continue
        if tokens > limit:  # as the submitter: split into parts that fit
            counts["split"] += 1
            tokens //= parts_needed(tokens, limit, batch.count)
        if waiting.get(key, 0) + tokens > limit:
            counts["wait"] += 1
        waiting[key] = waiting.get(key, 0) + tokens
