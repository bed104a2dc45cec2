"""``tierline status``: every batch in flight (and those just ended), read from the internal topics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from core.cost import DailyBudget
from core.status import BatchRow, batch_rows, duration
from core.table import fit, text_table
from schemas import BatchRecord
from streams.settings import Settings
from streams.kafka.whole_topic import partitions_of, read_to_end, reader
from streams.state.batch_log import record_of
from streams.kafka.topics import require_topics

__all__ = ["Status", "read_status", "render"]

ALERTS_LOOKBACK_S = 3 * 86_400  # a batch lives at most a day or so: older alerts are about ended ones


@dataclass(frozen=True, slots=True)
class Status:
    rows: list[BatchRow]
    spent_today_usd: float
    budget_usd: float  # 0: no cap
    saved_today_usd: float = 0.0  # batches ended today (UTC): their results at the standard prices, less their cost
    alerts: tuple[dict[str, Any], ...] = ()  # the newest alert of each batch, the newest first

    def as_dict(self) -> dict[str, Any]:
        return {"batches": [row.as_dict() for row in self.rows], "spent_today_usd": round(self.spent_today_usd, 6),
                "daily_budget_usd": self.budget_usd, "saved_today_usd": round(self.saved_today_usd, 6),
                "alerts": list(self.alerts)}


async def read_status(settings: Settings, ended_within_s: float | None) -> Status:
    await require_topics(settings, "batches", "batch-status", "alerts")  # a wrong prefix is said, not an empty table
    now = time.time()
    consumer = reader(settings.kafka, "status", fetch_max_bytes=32 << 20)
    try:
        await consumer.start()
        # Every topic's partitions first: once assigned, the consumer knows only the assigned ones.
        partitions = {name: await partitions_of(consumer, settings.topics.named(name))
                      for name in ("batches", "batch-status", "alerts")}

        async def latest(name: str, since_ms: int | None = None) -> dict[str, dict[str, Any]]:
            return await _latest(consumer, settings.topics.named(name), partitions[name], since_ms)

        records = {key: doc for key, doc in (await latest("batches")).items() if record_of(doc) is not None}
        progress = await latest("batch-status")
        alerts = await latest("alerts", since_ms=int((now - ALERTS_LOOKBACK_S) * 1000))
    finally:
        await consumer.stop()
    budget = DailyBudget(settings.daily_budget_usd, lambda: now)
    today, saved = int(now // 86_400), 0.0
    for doc in records.values():
        batch = BatchRecord(**doc)
        budget.record(batch.batch_key, batch.budget_day or int(batch.created_at // 86_400), counted_usd(batch))
        if batch.state == "ended" and int(batch.at // 86_400) == today:
            saved += max(0.0, batch.realtime_usd - batch.cost_usd)
    rows = batch_rows(list(records.values()), progress, alerts, now, settings.catalogue, ended_within_s)
    newest = tuple(sorted(alerts.values(), key=lambda alert: alert.get("at") or 0.0, reverse=True))
    return Status(rows, budget.spent(), settings.daily_budget_usd, saved, newest)


async def _latest(consumer: AIOKafkaConsumer, topic: str, partitions: set[int],
                  since_ms: int | None) -> dict[str, dict[str, Any]]:
    """The newest value under each key (a tombstone removes it)."""
    latest: dict[str, dict[str, Any]] = {}
    async for record in read_to_end(consumer, topic, partitions, since_ms):
        key = (record.key or b"").decode()
        if record.value is None:
            latest.pop(key, None)
        else:
            latest[key] = orjson.loads(record.value)
    return latest


#: Columns left out unless ``--wide``, and the narrowest the others may be cut to in 120 characters.
WIDE_ONLY = ("provider status", "unchanged")
NARROWEST = {"batch": 16, "model": 12, "alert": 10}
WIDTH = 120


def render(status: Status, wide: bool = False) -> str:
    """The batches as a table: within 120 characters (ids and models cut, keeping their ends), or ``wide``, whole and
    with the provider's own status and how long it has been unchanged."""
    head = ["batch", "provider", "model", "items", "state", "provider status", "done", "failed", "age", "left",
            "unchanged", "alert"]
    rows = [[row.batch_id or row.batch_key, row.provider, row.model or "-", f"{row.items:,}", row.state,
             row.provider_status or "-", f"{row.done:,}", f"{row.failed:,}", duration(row.age_s),
             duration(row.left_s), duration(row.unchanged_s), row.alert or ""] for row in status.rows]
    if not wide:
        kept = [i for i, name in enumerate(head) if name not in WIDE_ONLY]
        head = [head[i] for i in kept]
        rows = fit(head, [[row[i] for i in kept] for row in rows], WIDTH,
                   {head.index(name): least for name, least in NARROWEST.items()})
    out = text_table(head, rows)
    in_flight = sum(1 for row in status.rows if row.unfinished)
    spent = (f"spent today (UTC) ${status.spent_today_usd:,.4f} of a ${status.budget_usd:,.2f} daily budget "
             "(unfinished batches at their estimate)" if status.budget_usd
             else f"spent today (UTC) on batches ended ${status.spent_today_usd:,.4f}")
    out.append(f"{in_flight} batch(es) in flight, {len(status.rows) - in_flight} ended shown; {spent}")
    return "\n".join(out)


def counted_usd(batch: BatchRecord) -> float:
    """What a batch counts for: its estimate until it has ended, then its cost (nothing if refused)."""
    return {"ended": batch.cost_usd, "rejected": 0.0, "replaced": 0.0, "superseded": 0.0}.get(batch.state,
                                                                                       batch.estimated_usd)
