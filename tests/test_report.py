"""The spend report's arithmetic: grouping, totals, the saving, and duplicates counted once."""

from pathlib import Path

import pytest

from core.cost import Billed, PriceTable
from core.report import SpendReport, check_by
from streams.settings import Settings

PRICING = Settings().catalogue.pricing()  # each provider's, as its spec says
PRICES = PriceTable.load(Path(__file__).parents[1] / "streams" / "data" / "prices.json", PRICING)


def result(cid: str, provider: str, model: str, tokens_in: int, tokens_out: int, tier: str = "batch",
           batch_id: str = "b1", reprocess: str | None = None) -> dict:
    usage = ({"input_tokens": tokens_in, "output_tokens": tokens_out} if provider == "anthropic"
             else {"prompt_tokens": tokens_in, "completion_tokens": tokens_out})
    full = PRICES.realtime_usd(provider, model, Billed(tokens_in, tokens_out))
    cost = PRICES.batch_usd(provider, model, Billed(tokens_in, tokens_out)) if tier == "batch" else full
    return {"custom_id": cid, "provider": provider, "model": model, "tier": tier, "batch_id": batch_id,
            "usage": usage, "cost_usd": cost, "realtime_usd": full, "reprocess": reprocess}


def test_batch_results_cost_half_of_realtime_and_the_saving_is_the_difference() -> None:
    report = SpendReport()
    report.add(result("a", "openai", "gpt-4o-mini", 1_000_000, 1_000_000))
    [(group, line)] = report.rows()
    assert group == ("batch", "openai", "gpt-4o-mini")
    assert line.cost_usd == pytest.approx(0.375)  # (0.15 + 0.60) at half price
    assert line.realtime_usd == pytest.approx(0.75)
    assert line.saved_usd == pytest.approx(0.375)
    assert line.saved_share == pytest.approx(0.5)


def test_groups_are_per_tier_provider_and_model_and_the_total_adds_them_up() -> None:
    report = SpendReport()
    report.add(result("a", "anthropic", "claude-sonnet-4-20250514", 2_000, 500))
    report.add(result("b", "anthropic", "claude-sonnet-4-20250514", 3_000, 700))
    report.add(result("c", "openai", "gpt-4.1", 10_000, 1_000))
    report.add(result("d", "openai", "gpt-4.1", 10_000, 1_000, tier="realtime", batch_id="req_1"))
    groups = {group: line for group, line in report.rows()}
    sonnet = groups["batch", "anthropic", "claude-sonnet-4-20250514"]
    assert (sonnet.items, sonnet.input_tokens, sonnet.output_tokens) == (2, 5_000, 1_200)
    assert sonnet.cost_usd == pytest.approx((5_000 * 3 + 1_200 * 15) / 1e6 / 2)
    realtime = groups["realtime", "openai", "gpt-4.1"]
    assert realtime.saved_usd == pytest.approx(0.0)  # full price: nothing saved
    total = report.total()
    assert total.items == 4
    assert total.cost_usd == pytest.approx(sum(line.cost_usd for line in groups.values()))
    # Two batch groups saved half; the realtime one saved nothing.
    assert total.saved_usd == pytest.approx(sonnet.saved_usd + groups["batch", "openai", "gpt-4.1"].saved_usd)
    assert report.as_dict()["groups"][0]["cost_usd"] >= report.as_dict()["groups"][-1]["cost_usd"]


def test_a_result_delivered_twice_is_counted_once_but_a_reprocess_or_a_new_batch_counts_again() -> None:
    report = SpendReport()
    report.add(result("a", "openai", "gpt-4o", 100, 10))
    report.add(result("a", "openai", "gpt-4o", 100, 10))  # at-least-once: the same event again
    report.add(result("a", "openai", "gpt-4o", 100, 10, reprocess="fix-1"))  # a deliberate re-run: billed
    assert report.total().items == 2
    assert report.duplicates == 1
    assert report.as_dict()["duplicates_ignored"] == 1


def test_an_empty_report_saves_nothing_and_does_not_divide_by_zero() -> None:
    total = SpendReport().total()
    assert (total.items, total.cost_usd, total.saved_share) == (0, 0.0, 0.0)


def test_spend_groups_by_a_metadata_field_and_results_without_it_are_a_group_of_their_own() -> None:
    report = SpendReport(by="metadata.team")
    for cid, team in (("a", "growth"), ("b", "growth"), ("c", "search"), ("d", None)):
        event = result(cid, "openai", "gpt-4o-mini", 1_000_000, 0)
        event["metadata"] = {"team": team} if team else {"job": "nightly"}
        report.add(event)
    groups = {group: line for group, line in report.rows()}
    assert set(groups) == {("growth",), ("search",), ("(none)",)}
    assert groups["growth",].items == 2 and groups["growth",].cost_usd == pytest.approx(0.15)  # 2 × 0.15 / 2
    assert report.as_dict()["groups"][0] == {"metadata.team": "growth", **groups["growth",].as_dict()}
    assert check_by("metadata.team") is None and check_by("team") and check_by("metadata.")


def test_cached_tokens_are_counted_among_the_input_and_shown_apart() -> None:
    report = SpendReport()
    event = result("a", "anthropic", "claude-sonnet-4-5", 0, 1_000)
    event["usage"] = {"input_tokens": 500, "cache_creation_input_tokens": 10_000, "cache_read_input_tokens": 100_000,
                      "output_tokens": 1_000}
    report.add(event)
    line = report.total()
    assert (line.input_tokens, line.cached_tokens, line.output_tokens) == (110_500, 110_000, 1_000)
    assert report.as_dict()["total"]["cached_tokens"] == 110_000


def test_the_figures_as_csv_are_a_header_a_row_per_group_and_the_total() -> None:
    import csv

    from streams.cli.report import render_csv

    report = SpendReport()
    report.add(result("a", "anthropic", "claude-sonnet-4-20250514", 2_000, 500))
    report.add(result("b", "openai", "gpt-4.1", 10_000, 1_000))
    rows = list(csv.reader(render_csv(report).splitlines()))
    assert rows[0] == ["tier", "provider", "model", "items", "input_tokens", "cached_tokens", "output_tokens",
                       "cost_usd", "realtime_usd", "saved_usd"]
    assert [row[:3] for row in rows[1:]] == [["batch", "openai", "gpt-4.1"],
                                            ["batch", "anthropic", "claude-sonnet-4-20250514"], ["total", "", ""]]
    assert float(rows[-1][7]) == pytest.approx(float(rows[1][7]) + float(rows[2][7]))


def test_answers_refused_are_counted_by_reason_with_their_cost_once_each() -> None:
    report = SpendReport()

    def failure(cid: str, reason: str, attempt: int, final: bool, cost: float) -> dict:
        return {"custom_id": cid, "provider": "openai", "batch_id": "b1", "attempt": attempt, "final": final,
                "error": {"type": reason, "message": "..."}, "cost_usd": cost}

    for event in (failure("a", "invalid_answer", 1, False, 0.01), failure("a", "invalid_answer", 2, True, 0.01),
                  failure("a", "invalid_answer", 2, True, 0.01),  # delivered twice
                  failure("b", "empty_answer", 1, False, 0.02), failure("c", "rate_limit_exceeded", 1, False, 0)):
        report.add_failure(event)
    assert report.as_dict()["refused_answers"] == {
        "empty_answer": {"attempts": 1, "final": 0, "cost_usd": 0.02},
        "invalid_answer": {"attempts": 2, "final": 1, "cost_usd": 0.02}}
    assert report.duplicates == 1 and not report.lines  # no result among them


def test_with_a_budget_today_is_counted_per_tier_from_results_and_answers_refused_alike() -> None:
    report = SpendReport(cap_usd=1.0, today_from_ms=1_000)
    report.add(result("a", "anthropic", "claude-haiku-4-5", 1_000, 1_000, tier="async", batch_id=""), at_ms=2_000)
    report.add(result("b", "anthropic", "claude-haiku-4-5", 1_000, 1_000), at_ms=2_000)
    report.add(result("c", "anthropic", "claude-haiku-4-5", 1_000, 1_000, batch_id="b0"), at_ms=500)  # yesterday
    report.add_failure({"custom_id": "d", "provider": "openai", "tier": "realtime", "attempt": 1, "final": True,
                        "error": {"type": "invalid_answer", "message": "..."}, "cost_usd": 0.5}, at_ms=3_000)
    today = report.as_dict()["today"]
    batch = result("b", "anthropic", "claude-haiku-4-5", 1_000, 1_000)["cost_usd"]
    assert today["by_tier"] == {"async": pytest.approx(2 * batch, abs=1e-6), "batch": pytest.approx(batch, abs=1e-6),
                                "realtime": 0.5}
    assert today["cap_usd"] == 1.0
