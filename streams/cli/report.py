"""``tierline report``: spend per tier, provider and model (or per metadata field) over a period, and what
the batch tier saved."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timezone

import orjson

from core.cost import DAY
from core.report import SpendLine, SpendReport
from core.table import text_table
from streams.settings import Settings
from streams.kafka.whole_topic import partitions_of, read_to_end, reader
from streams.kafka.topics import require_topics

__all__ = ["spend_report", "render"]


async def spend_report(settings: Settings, since_ms: int | None = None, until_ms: int | None = None,
                       by: str | None = None) -> SpendReport:
    """Every result on the results topic published in [since, until), as it stands now, and the answers refused
    on the failures topic."""
    await require_topics(settings, "results", "failures")  # a wrong prefix is said, not an empty report
    report = SpendReport(by)
    if settings.daily_budget_usd:  # today's spend per tier against the cap
        report.cap_usd = settings.daily_budget_usd
        report.today_from_ms = int(time.time() // DAY * DAY * 1000)
    for topic, add in ((settings.topics.results, report.add), (settings.topics.failures, report.add_failure)):
        consumer = reader(settings.kafka, "report", fetch_max_bytes=32 << 20)
        try:
            await consumer.start()
            async for record in read_to_end(consumer, topic, await partitions_of(consumer, topic), since_ms):
                if record.value is None or (until_ms is not None and record.timestamp >= until_ms):
                    continue
                add(orjson.loads(record.value), record.timestamp)
        finally:
            await consumer.stop()
    return report


def render(report: SpendReport, since_ms: int | None, until_ms: int | None) -> str:
    """A table a person reads: one row per group, and the total."""
    period = f"{_day(since_ms) if since_ms else 'the beginning'} to {_day(until_ms) if until_ms else 'now'} (UTC)"
    groups = report.heads
    head = (*groups, "items", "input tok", "cached tok", "output tok", "cost USD", "realtime USD", "saved USD")
    rows = [(*group, *_figures(line)) for group, line in report.rows()]
    total = report.total()
    rows.append(("total", *[""] * (len(groups) - 1), *_figures(total)))
    out = [f"spend on results from {period}", *text_table(head, rows, left=len(groups))]
    if total.realtime_usd:
        out.append(f"the same tokens at realtime prices would have cost ${total.realtime_usd:,.4f}: "
                   f"saved ${total.saved_usd:,.4f} ({total.saved_share:.1%})")
    if report.refused:
        rows = [(reason, f"{line.attempts:,}", f"{line.final:,}", f"{line.cost_usd:,.4f}")
                for reason, line in sorted(report.refused.items())]
        out += ["", "answers refused (billed, not results; each retried until its last attempt)",
                *text_table(("reason", "attempts", "final", "cost USD"), rows, left=1)]
    if report.cap_usd:
        spent = sum(report.today.values())
        tiers = ", ".join(f"{tier} ${usd:,.4f}" for tier, usd in sorted(report.today.items())) or "nothing yet"
        share = spent / report.cap_usd
        out.append(f"today (UTC): ${spent:,.4f} of the ${report.cap_usd:,.2f} daily budget ({share:.0%}), every tier "
                   f"together: {tiers}")
    if report.duplicates:
        out.append(f"{report.duplicates} repeated event(s) were counted once (at-least-once delivery)")
    return "\n".join(out)


def render_csv(report: SpendReport) -> str:
    """The groups and the total as CSV, unrounded, for a spreadsheet: one header row, then a row per group."""
    out = io.StringIO()
    figures = ("items", "input_tokens", "cached_tokens", "output_tokens", "cost_usd", "realtime_usd", "saved_usd")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*report.heads, *figures])
    total = ("total", *[""] * (len(report.heads) - 1))
    for group, line in [*report.rows(), (total, report.total())]:
        writer.writerow([*group, *(getattr(line, name) for name in figures)])
    return out.getvalue().rstrip("\n")


def _figures(line: SpendLine) -> tuple[str, ...]:
    return (f"{line.items:,}", f"{line.input_tokens:,}", f"{line.cached_tokens:,}", f"{line.output_tokens:,}",
            f"{line.cost_usd:,.4f}",
            f"{line.realtime_usd:,.4f}", f"{line.saved_usd:,.4f}")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")
