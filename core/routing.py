"""Which tier runs a work item, and why; pure.

The decision follows the questions an engineer would ask of a workload:

1. Is a user waiting on the screen, or is the answer streamed? Realtime: only a
   synchronous call answers while someone watches.
2. How long may the result take (a deadline, or a latency tolerance)? Realtime if
   less than the async tier's SLA; async if less than the batch tier can promise.
   An item whose deadline the batch tier cannot meet never goes to batch, even
   when it asks for it.
   Between the two, when cost comes first and the model offers it: flex, a synchronous call at the
   batch price (OpenAI's ``service_tier: "flex"``), if the deadline leaves flex its own time.
3. Is responsiveness the priority rather than cost? Async: minutes, at full price.
4. Otherwise nobody is waiting and cost comes first: batch, at half price (bulk
   volumes are what it is for).

Every decision carries its reasons, in words a user reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.flex import offers_flex
from schemas import TIERS, AskedTier, Tier, WorkItem

__all__ = ["TIERS", "DEFAULT_ROUTE", "Needs", "Route", "TierTimes", "needs_of", "route"]



@dataclass(frozen=True, slots=True)
class TierTimes:
    """How long each tier may take to answer: the async SLA and what the batch tier can promise."""

    async_sla_s: float = 15 * 60.0
    batch_turnaround_s: float = 24 * 3600.0  # the providers' completion window
    flex_sla_s: float = 30 * 60.0  # a flex call, its waits for capacity included


@dataclass(frozen=True, slots=True)
class Needs:
    """What an item says about itself; ``max_wait_s`` comes from its deadline or latency tolerance."""

    tier: AskedTier = "auto"  # auto, or the tier asked for
    user_waiting: bool = False
    stream: bool = False
    max_wait_s: float | None = None  # None: no deadline
    priority: str | None = None  # "cost" or "responsiveness"
    bulk: bool = False
    flex: bool = False  # its model offers flex processing


@dataclass(frozen=True, slots=True)
class Route:
    tier: Tier
    reasons: list[str] = field(default_factory=list)


def route(needs: Needs, times: TierTimes = TierTimes()) -> Route:
    wait = needs.max_wait_s
    batch_too_slow = wait is not None and wait < times.batch_turnaround_s
    if needs.tier != "auto":
        if needs.tier == "batch" and batch_too_slow:
            assert wait is not None
            return Route("async", [f"asked for batch, but its deadline ({_span(wait)}) is sooner than the batch "
                                   f"tier can promise ({_span(times.batch_turnaround_s)})"])
        if needs.tier == "flex" and not needs.flex:
            return Route("async", ["asked for flex, but its model does not offer flex processing "
                                   "(TIERLINE_FLEX_MODELS): async, at full price"])
        return Route(needs.tier, [f"asked for {needs.tier}"])  # type narrowed: not "auto"
    if needs.user_waiting:
        return Route("realtime", ["a user is waiting for the answer"])
    if needs.stream:
        return Route("realtime", ["the answer is to be streamed"])
    if wait is not None and wait < times.async_sla_s:
        return Route("realtime", [f"its deadline ({_span(wait)}) is sooner than the async tier's SLA "
                                  f"({_span(times.async_sla_s)})"])
    if batch_too_slow and needs.flex and needs.priority == "cost" and wait is not None and wait >= times.flex_sla_s:
        return Route("flex", [f"its deadline ({_span(wait)}) is sooner than the batch tier can promise "
                              f"({_span(times.batch_turnaround_s)})", "cost comes first: flex processing, "
                              "at the batch price"])
    if batch_too_slow:
        assert wait is not None
        return Route("async", [f"its deadline ({_span(wait)}) is sooner than the batch tier can promise "
                               f"({_span(times.batch_turnaround_s)})"])
    if needs.priority == "responsiveness":
        return Route("async", ["responsiveness comes before cost, and nobody is watching the screen"])
    reasons = ["nobody is waiting", "no deadline sooner than the batch tier's" if wait is not None else "no deadline",
               "cost comes first: half price"]
    if needs.bulk:
        reasons.append("part of a bulk volume")
    return Route("batch", reasons)


def needs_of(item: WorkItem, arrived_at: float, now: float, flex_models: tuple[str, ...] = ()) -> Needs | None:
    """What a work item says of its needs; None when it says nothing (``DEFAULT_ROUTE``). ``flex_models``: the
    models its provider offers flex processing for (its spec's)."""
    stream = item.params.get("stream") is True
    if (item.tier == "auto" and not (item.user_waiting or item.bulk or stream) and item.deadline is None
            and item.max_latency_s is None and item.priority is None):
        return None
    waits = []
    if item.deadline is not None:
        waits.append(item.deadline - now)
    if item.max_latency_s is not None:
        waits.append(arrived_at + item.max_latency_s - now)
    flex = offers_flex(str(item.params.get("model", "")), flex_models)
    return Needs(item.tier, item.user_waiting, stream, min(waits) if waits else None, item.priority, item.bulk, flex)


#: Where an item that says nothing of its needs goes, and why.
DEFAULT_ROUTE = route(Needs())


def _span(seconds: float) -> str:
    if seconds < 0:
        return "already passed"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
