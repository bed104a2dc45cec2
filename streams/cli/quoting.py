"""``tierline submit --quote``: what a file would cost, its batches, and what would hold them back; nothing is
published and Kafka is not asked."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from core.admission import Enqueued
from core.cost import PriceTable
from core.quote import Quote, QuoteLine, quote
from core.table import text_table
from core.validation import Accepted, Rejected, validate
from streams.cli.produce import numbered_jsonl
from streams.settings import Settings

__all__ = ["quote_file", "render"]


def quote_file(settings: Settings, path: Path) -> tuple[Quote, Counter[str]]:
    """The file's quote, and its invalid lines counted by reason (they would be dead letters, and cost nothing)."""
    invalid: Counter[str] = Counter()

    def accepted() -> Iterator[Accepted]:
        for _, line in numbered_jsonl(path):
            verdict = validate(line, settings.catalogue)
            if isinstance(verdict, Rejected):
                invalid[verdict.reason] += 1
            else:
                yield verdict

    prices = PriceTable.load(settings.prices_path, settings.catalogue.pricing())
    enqueued = Enqueued(settings.token_limits) if settings.token_limits else None
    return quote(accepted(), settings.catalogue, prices, settings.batch_max_wait_s, settings.tier_times,
                 time.time(), settings.daily_budget_usd, enqueued), invalid


def as_dict(found: Quote, invalid: Counter[str]) -> dict[str, Any]:
    return {**found.as_dict(), "invalid_lines": dict(sorted(invalid.items()))}


def render(found: Quote, invalid: Counter[str], path: Path) -> str:
    head = ("tier", "provider", "model", "items", "batches", "input tok", "output tok ≤", "cost USD ≤",
            "realtime USD ≤", "saved USD")
    rows = [(*group, *_figures(line)) for group, line in found.rows()]
    total = found.total()
    rows.append(("total", "", "", *_figures(total)))
    out = [f"quote for {path} (nothing published): each item at its input's size and its output cap, so the "
           "cost is at most this", *text_table(head, rows, left=3)]
    if total.realtime_usd:
        out.append(f"at realtime prices the same items would cost up to ${total.realtime_usd:,.4f}: the batch tier "
                   f"saves ${total.saved_usd:,.4f}")
    if found.daily_budget_usd:
        out.append(f"daily budget ${found.daily_budget_usd:,.4f} (before what was spent today): " + (
            f"{found.over_budget_batches} batch(es), ${found.over_budget_usd:,.4f}, would wait for another day"
            if found.over_budget_batches else "every batch fits"))
    for key, counts in sorted(found.queued.items()):
        said = [f"{counts['wait']} waiting for earlier ones to end", f"{counts['split']} split for being larger"]
        if counts["never"]:
            said.append(f"{counts['never']} of one item larger than the limit: held until it is raised")
        out.append(f"enqueued-token limit {key} = {counts['limit']:,} tokens: {counts['batches']} batch(es), "
                   + ", ".join(said))
    if found.repeated:
        out.append(f"{found.repeated} line(s) repeat an earlier custom_id: run once, counted once")
    if invalid:
        out.append(f"{sum(invalid.values())} invalid line(s), dead letters that cost nothing: "
                   + ", ".join(f"{reason} {n}" for reason, n in sorted(invalid.items())))
    return "\n".join(out)


def _figures(line: QuoteLine) -> tuple[str, ...]:
    return (f"{line.items:,}", f"{line.batches:,}" if line.batch_keys else "-", f"{line.input_tokens:,}",
            f"{line.output_tokens:,}", f"{line.cost_usd:,.4f}", f"{line.realtime_usd:,.4f}",
            f"{line.saved_usd:,.4f}")
