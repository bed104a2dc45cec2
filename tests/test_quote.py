"""``tierline submit --quote``: the batches a file would form, its tokens and cost at most, and what would hold it
back; in-process for the arithmetic, and against a real worker for "the quote is what the worker then reserves"."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.admission import Enqueued
from core.cost import PriceTable
from core.quote import quote
from core.validation import Accepted, validate
from streams.local.workload import make_items
from streams.settings import Settings
from tests.support import follow, topic_values
from tests.test_operator_cli import tierline, tierline_argv

NOW = 1_800_000_000.0


def accepted(items: list[dict[str, Any]], settings: Settings) -> list[Accepted]:
    verdicts = [validate(orjson.dumps(item), settings.catalogue) for item in items]
    assert all(isinstance(v, Accepted) for v in verdicts)
    return verdicts  # type: ignore[return-value]


def quoted(items: list[dict[str, Any]], **env: str) -> Any:
    settings = Settings.from_env({"TIERLINE_BATCH_MAX_ITEMS": "10", **env})
    prices = PriceTable.load(settings.prices_path, settings.catalogue.pricing())
    enqueued = Enqueued(settings.token_limits) if settings.token_limits else None
    return quote(accepted(items, settings), settings.catalogue, prices, settings.batch_max_wait_s,
                 settings.tier_times, NOW, settings.daily_budget_usd, enqueued)


def test_items_form_the_batches_the_window_would_close_at_each_cap() -> None:
    items = make_items(60, "q", providers=("anthropic", "openai", "gemini"))  # 20 each
    found = quoted(items)
    assert found.batches == 7  # 2 of 10 items for Anthropic and Gemini; OpenAI's per model: 15 and 5 items
    by = {group: line for group, line in found.lines.items()}
    assert sum(line.items for line in by.values()) == 60
    assert by[("batch", "anthropic", "claude-haiku-4-5")].batches == 2
    openai = [line for (tier, provider, _), line in by.items() if provider == "openai"]
    assert sum(line.items for line in openai) == 20 and len(openai) == 2
    total = found.total()
    assert total.cost_usd == pytest.approx(total.realtime_usd / 2)  # every item in the batch tier: half price
    assert total.output_tokens == 60 * 256  # each item's cap


def test_items_routed_elsewhere_are_priced_at_their_tier_and_form_no_batch() -> None:
    [item] = make_items(1, "r", providers=("openai",))
    found = quoted([{**item, "tier": "async"}, {**item, "custom_id": "r-2", "user_waiting": True}])
    assert {group[0] for group in found.lines} == {"async", "realtime"} and found.batches == 0
    assert all(line.cost_usd == line.realtime_usd > 0 for line in found.lines.values())


def test_a_custom_id_repeated_in_the_file_is_counted_once() -> None:
    [item] = make_items(1, "d", providers=("anthropic",))
    found = quoted([item, item, {**item, "tier": "async", "reprocess": "again"}])
    assert found.repeated == 1 and found.total().items == 2  # a re-run is another run


def test_the_daily_budget_and_the_enqueued_token_limit_say_what_they_hold_back() -> None:
    items = make_items(40, "h", providers=("openai",))
    whole = quoted(items).total().cost_usd
    found = quoted(items, TIERLINE_DAILY_BUDGET_USD=str(whole / 2), TIERLINE_ENQUEUED_TOKEN_LIMITS="openai/*=600")
    assert 0 < found.over_budget_batches < found.batches and 0 < found.over_budget_usd < whole
    limits = found.queued
    assert set(limits) == {"openai/gpt-4o-mini", "openai/gpt-4.1-mini"}
    assert sum(c["batches"] for c in limits.values()) == found.batches
    assert sum(c["wait"] for c in limits.values()) > 0


def test_the_command_prints_the_quote_and_publishes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    lines = [orjson.dumps(item) for item in make_items(30, "c", providers=("anthropic", "openai"))]
    path.write_bytes(b"\n".join([*lines, b'{"custom_id": "x", "provider": "nope"}']) + b"\n")
    env = {**os.environ, "TIERLINE_ENV_FILE": "", "TIERLINE_BROKER": "kafka://127.0.0.1:1"}  # nothing answers there
    done = subprocess.run(tierline_argv("submit", "--quote", "--json", str(path)), env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    doc = orjson.loads(done.stdout)
    assert doc["total"]["items"] == 30 and doc["invalid_lines"] == {"unknown_provider": 1}
    table = subprocess.run(tierline_argv("submit", "--quote", str(path)), env=env, capture_output=True, text=True,
                           timeout=60)
    assert "nothing published" in table.stdout and "the batch tier saves $" in table.stdout
    wrong = subprocess.run(tierline_argv("submit", "--quote", "--follow", str(path)), env=env, capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 2 and "nothing to --follow" in wrong.stderr


@pytest.mark.integration
def test_the_quote_is_what_the_worker_reserves_and_bounds_what_it_spends(start_worker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = start_worker(TIERLINE_BATCH_MAX_ITEMS="10", TIERLINE_BATCH_MAX_WAIT_S="5",
                            TIERLINE_DAILY_BUDGET_USD="100")
    items = make_items(60, "qw", providers=("anthropic", "openai", "gemini"))
    path = tmp_path / "items.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(item) for item in items) + b"\n")
    env = {"TIERLINE_BATCH_MAX_ITEMS": "10", "TIERLINE_DAILY_BUDGET_USD": "100"}
    done = subprocess.run(tierline_argv("submit", "--quote", "--json", str(path)),
                          env={**os.environ, **env, "TIERLINE_ENV_FILE": ""}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    quote_doc = orjson.loads(done.stdout)
    assert tierline(settings, "submit", str(path)).returncode == 0
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=180))
    results = [events[0] for events in progress.results.values()]
    assert len(results) == 60
    intents = [r for r in asyncio.run(topic_values(settings, settings.topics.batches)) if r.get("state") == "intent"]
    # The same estimate the worker reserved on the daily budget, batch for batch.
    assert len(intents) == quote_doc["batches"] == 7
    assert sum(r["estimated_usd"] for r in intents) == pytest.approx(quote_doc["total"]["cost_usd"], abs=1e-5)
    # An upper bound of what the provider then billed: input by the request's size, output by its cap.
    spent = sum(r["cost_usd"] for r in results)
    assert 0 < spent <= quote_doc["total"]["cost_usd"]
    assert sum(r["usage"].get("input_tokens") or r["usage"].get("prompt_tokens") or
               r["usage"].get("promptTokenCount") for r in results) <= quote_doc["total"]["input_tokens"]
