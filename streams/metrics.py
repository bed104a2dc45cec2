"""The worker's Prometheus metrics, served at ``/metrics`` on its web server (``streams.web``).

Names follow the logs: a counter ``tierline_<event>_total`` counts the log event
``<event>`` (``batch_submitted``, ``dead_lettered``, ``alert``, ...), and the labels are
fields of that event. Per-item figures are counted where they are cheap — a chunk of
records read, a batch settled — and the ``batch_settled`` event carries the same
figures as fields: ``results``, ``failures``, ``retries``, ``cost_usd``. The gauges
are read from the worker's state when scraped. ``tests/test_metrics.py`` holds the
names and the log events to each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector,
                               disable_created_metrics, generate_latest)

if TYPE_CHECKING:
    from schemas import BatchRecord
    from streams.runtime import Runtime

__all__ = ["REGISTRY", "LOGGED", "scrape", "WorkerState", "WindowState", "QueueState", "PollerState"]

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: a restart shows as a counter reset all the same
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(f"tierline_{name}", doc, labels, registry=REGISTRY)


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(f"tierline_{name}", doc, labels, registry=REGISTRY)


# Counted per chunk of records: no log line of their own.
items_in = _counter("items_in", "Records read from the requests and retry topics.", ("topic",))
items_routed = _counter("items_routed", "Work items given to a tier (batch: placed in a provider batch).",
                        ("tier", "provider"))
items_forwarded = _counter("items_forwarded", "Requests and retries read away from their custom_id's home partition "
                           "and forwarded there (streams.kafka.homes).", ("input",))
items_forwarded.labels("requests")  # at 0 from the start: none forwarded is the usual answer, and a rate of it
items_forwarded.labels("retry")
results = _counter("results", "Result events emitted (field of batch_settled).", ("tier", "provider", "model"))
failures = _counter("failures", "Items failed for good (field of batch_settled).", ("tier", "provider"))
answer_failures = _counter("answer_failures", "Answers billed but refused: not the JSON their schema asks for "
                           "(invalid_answer), cut off at the token limit (truncated), or empty (empty_answer); each "
                           "attempt counted, retried or final.", ("tier", "provider", "reason"))
retries = _counter("retries", "Items sent back through the retry topic (field of batch_settled).", ("provider",))
cost_usd = _counter("cost_usd", "What the results cost, from the providers' usage (field of batch_settled).",
                    ("tier", "provider", "model"))
realtime_usd = _counter("realtime_usd", "What the same results would have cost at the standard (realtime) prices: "
                        "the saving is this less cost_usd.", ("tier", "provider", "model"))
batch_seconds = Histogram("tierline_batch_seconds", "Provider batches: created to ended at the provider (its "
                          "turnaround).", ("provider",), registry=REGISTRY,
                          buckets=(10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800))

# One per log event of the same name.
duplicate_skipped = _counter("duplicate_skipped", "Items skipped: already succeeded or already in a batch.")
dead_lettered = _counter("dead_lettered", "Records sent to the dead-letter topic.", ("reason",))
batch_opened = _counter("batch_opened", "Batches opened in the window.", ("provider",))
batch_closed = _counter("batch_closed", "Batches closed, by why they closed.", ("provider", "reason"))
batch_held = _counter("batch_held", "Times the daily budget held a closed batch back.")
webhooks = _counter("webhooks", "Providers' webhooks taken: accepted (a batch ended; its follower polls it), "
                    "ignored (another event), refused (the signature does not verify).", ("provider", "outcome"))
call_held_by_budget = _counter("call_held_by_budget", "Synchronous calls the daily budget had no room for: an "
                               "async or flex item waits (once counted), a realtime call is answered 429.",
                               ("tier", "provider"))
batch_submitted = _counter("batch_submitted", "Batches created at a provider.", ("provider",))
batch_rejected = _counter("batch_rejected", "Batches a provider refused or could not take.", ("provider",))
batch_refused_for_items = _counter("batch_refused_for_items", "Batches a provider refused for some items: those "
                                   "failed, the others were submitted again.", ("provider",))
batch_requeued = _counter("batch_requeued", "Batches that failed because the provider's queue for the model was "
                         "full, put back whole to be submitted again later.", ("provider",))
batch_held_for_queue = _counter("batch_held_for_queue", "Batches held back until they fit their model's "
                               "TIERLINE_ENQUEUED_TOKEN_LIMITS entry.", ("provider",))
batch_ended = _counter("batch_ended", "Batches a provider ended, by its final status.", ("provider", "status"))
batch_settled = _counter("batch_settled", "Batches whose every item has its event.", ("provider",))
retries_parked = _counter("retries_parked", "Waiting retries written again at the end of their partition, so that "
                          "the commit passes the work behind them (a restart does not read it again).")
batch_resumed = _counter("batch_resumed", "Unfinished batches taken over from Kafka after a rebalance or restart.")
poll_failed = _counter("poll_failed", "Provider status calls that failed (polling goes on).", ("provider",))
alert = _counter("alert", "Alerts raised, by kind (docs/runbook.md) and provider.", ("kind", "provider"))
realtime_refused = _counter("realtime_refused", "Realtime calls refused for a missing or unknown key (401).")
sla_missed = _counter("sla_missed", "Async and realtime items that took longer than their tier's SLA.", ("tier",))
item_seconds = Histogram("tierline_item_seconds", "Async and realtime items: arrival to result or final failure.",
                         ("tier",), registry=REGISTRY,
                         buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600))

#: Log events with a counter of the same name.
LOGGED = ("duplicate_skipped", "dead_lettered", "batch_opened", "batch_closed", "batch_held", "call_held_by_budget",
          "batch_submitted",
          "batch_rejected", "batch_refused_for_items", "batch_requeued", "batch_held_for_queue", "batch_ended",
          "batch_settled",
          "batch_resumed", "retries_parked", "poll_failed", "alert", "sla_missed", "realtime_refused")

# Read from the worker when scraped.
batches = _gauge("batches", "This worker's batches: open (filling), held (over the daily budget), in_flight "
                 "(durable, not yet settled).", ("state",))
oldest_unfinished_batch_age_seconds = _gauge("oldest_unfinished_batch_age_seconds",
                                             "Age of this worker's oldest batch in flight (0 when none).")
consumer_lag = _gauge("consumer_lag", "Records of this worker's partitions not yet in a durable batch "
                      "(log end minus committed offset).", ("topic",))
budget_usd = _gauge("budget_usd", "The daily budget, TIERLINE_DAILY_BUDGET_USD (0: none).")
budget_spent_today_usd = _gauge("budget_spent_today_usd", "Spend counted against today's (UTC) budget, at their "
                                "estimates for batches not yet ended (kept only when there is a budget).")
provider_credentials = _gauge("provider_credentials", "1 if this worker holds the provider's credential, 0 if "
                              "not (its batches wait with a provider_refused alert).", ("provider",))
ledger_entries = _gauge("ledger_entries", "Successes and ended attempts this worker's ledger knows: in memory (at "
                        "most TIERLINE_LEDGER_IN_MEMORY) and on disk.", ("where",))
ready = _gauge("ready", "1 once the worker has joined its group and loaded its state (as /health says).")
stall_after_seconds = _gauge("stall_after_seconds", "TIERLINE_STALL_AFTER_S: a batch unchanged for longer is stalled "
                             "(the alert rules compare tierline_batch_unchanged_seconds with it).")
batch_unchanged_seconds = _gauge("batch_unchanged_seconds", "Each batch this worker follows at its provider: how "
                                 "long the provider's status of it has not changed.",
                                 ("provider", "model", "batch_key", "batch_id", "status"))


class WindowState(Protocol):
    """What the metrics and ``/health`` read of the windowing agent."""

    @property
    def ready(self) -> bool: ...

    @property
    def open_count(self) -> int: ...

    @property
    def held_count(self) -> int: ...

    def lag(self) -> dict[str, int]: ...


class PollerState(Protocol):
    """What the metrics read of the poller: each batch it follows, its provider's last status and for how long."""

    def unchanged(self) -> list[tuple[BatchRecord, str, float]]: ...


class QueueState(Protocol):
    """What ``/health`` and the metrics read of the async-queue agent."""

    @property
    def ready(self) -> bool: ...

    def lag(self) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class WorkerState:
    """The worker's state as its pages see it: the runtime, and the two consumer agents through their interfaces."""

    runtime: Runtime
    window: WindowState
    queue: QueueState
    poller: PollerState

    def checks(self) -> dict[str, bool]:
        """Each condition of being ready to take work."""
        return {**self.runtime.checks(), "group_joined": self.window.ready, "async_group_joined": self.queue.ready}

    def ready(self) -> bool:
        return all(self.checks().values())


def scrape(state: WorkerState, now: float) -> bytes:
    """The exposition text, with the gauges read from the worker as of ``now``."""
    runtime, window = state.runtime, state.window
    batches.labels("open").set(window.open_count)
    batches.labels("held").set(window.held_count)
    batches.labels("in_flight").set(runtime.ownership.in_flight())
    oldest = runtime.ownership.oldest()
    oldest_unfinished_batch_age_seconds.set(now - oldest if oldest is not None else 0.0)
    lags = {**window.lag(), **state.queue.lag()}
    for topic in ("requests", "retry", "async"):
        consumer_lag.labels(topic).set(lags.get(topic, 0))
    budget_usd.set(runtime.budget.limit_usd)
    budget_spent_today_usd.set(runtime.budget.spent() if runtime.budget.limit_usd else 0.0)
    in_memory, on_disk = runtime.ledger.entries
    ledger_entries.labels("memory").set(in_memory)
    ledger_entries.labels("disk").set(on_disk)
    for provider, missing in runtime.credentials.items():
        provider_credentials.labels(provider).set(0 if missing else 1)
    ready.set(1 if state.ready() else 0)
    stall_after_seconds.set(runtime.settings.stall_after_s)
    batch_unchanged_seconds.clear()  # a batch ended or handed over since the last scrape has no series
    for record, status, seconds in state.poller.unchanged():
        batch_unchanged_seconds.labels(record.provider, record.model or "", record.batch_key, record.batch_id or "",
                                       status).set(seconds)
    return generate_latest(REGISTRY)
