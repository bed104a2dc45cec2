"""Where a set of published items has got to, for ``tierline submit --follow`` and the demo; pure.

Each item moves through batched → submitted → an end: a result, a final failure, a
dead letter, or *skipped* (it had already succeeded, so the worker left it alone). Lines published
without a custom_id (``unkeyed``: not JSON, not an object, none named) end as dead letters that
cannot be told apart: each dead letter without one of ours counts for one of them.
A failed attempt that will be retried is counted as retried and the item stays open.
The rate is of items reaching an end over the last ``RATE_WINDOW_S``; the ETA is the
rest at that rate, given only while items are ending: batches end in bursts, and
between bursts the wait is the provider's, which no rate foretells.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from core.cost import usage_tokens

__all__ = ["ItemProgress"]

RATE_WINDOW_S = 30.0
FLOWING_S = 5.0  # items ended this recently: the rate says something about the rest


@dataclass
class ItemProgress:
    wanted: set[str]  # the custom_ids published
    clock: Callable[[], float]
    unkeyed: int = 0  # lines published without a custom_id: dead letters to come
    batched: set[str] = field(default_factory=set)
    submitted: set[str] = field(default_factory=set)
    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)  # for good
    retried: set[str] = field(default_factory=set)
    dead: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)
    after_retry: int = 0  # results that needed more than one attempt
    batches: set[str] = field(default_factory=set)  # provider batch ids with a result of ours
    tokens: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    realtime_usd: float = 0.0
    dead_reasons: Counter[str] = field(default_factory=Counter)
    held: dict[str, float] = field(default_factory=dict)  # batch key → since when it waits for its model's queue
    unkeyed_dead: int = 0
    _batch_items: dict[str, list[str]] = field(default_factory=dict)
    _submitted_keys: set[str] = field(default_factory=set)
    _released: set[str] = field(default_factory=set)  # batches that were held, until their items end
    _notes: list[str] = field(default_factory=list)
    _samples: deque[tuple[float, int]] = field(default_factory=deque)
    _last_ended: tuple[float, int] = (float("-inf"), 0)  # when the count of ended items last grew

    # What the topics say, one event at a time. Events of different topics come in any
    # order: a batch's submitted record may be read before its items.

    def batch_items(self, batch_key: str, custom_ids: Iterable[str]) -> None:
        ours = [cid for cid in custom_ids if cid in self.wanted]
        self._batch_items.setdefault(batch_key, []).extend(ours)
        self.batched.update(ours)
        if batch_key in self._submitted_keys:
            self.submitted.update(ours)

    def batch_submitted(self, batch_key: str) -> None:
        self._submitted_keys.add(batch_key)
        self.submitted.update(self._batch_items.get(batch_key, ()))
        if (since := self.held.pop(batch_key, None)) is not None:
            self._released.add(batch_key)
            self._notes.append(f"batch {batch_key} fits now: submitted after {self.clock() - since:.0f} s held")

    def batch_held(self, batch_key: str) -> None:
        """The submitter holds the batch until it fits its model's enqueued-token limit."""
        if batch_key in self.held or batch_key in self._submitted_keys:
            return
        self.held[batch_key] = self.clock()
        self._notes.append(f"batch {batch_key} held: it does not fit beside its model's batches still queued at "
                           "the provider (TIERLINE_ENQUEUED_TOKEN_LIMITS)")

    def result(self, event: dict[str, Any]) -> None:
        cid = event["custom_id"]
        if cid not in self.wanted or cid in self.succeeded:
            return
        self.succeeded.add(cid)
        if event.get("tier", "batch") == "batch":  # a batch result says it was batched, whatever was read first
            self.batched.add(cid)
            self.submitted.add(cid)
        if event.get("batch_id"):
            self.batches.add(event["batch_id"])
        self.after_retry += event["attempt"] > 1
        tokens_in, tokens_out = usage_tokens(event.get("usage"))
        self.tokens["input"] += tokens_in
        self.tokens["output"] += tokens_out
        self.cost_usd += event.get("cost_usd") or 0.0
        self.realtime_usd += event.get("realtime_usd") or 0.0

    def failure(self, event: dict[str, Any]) -> None:
        cid = event["custom_id"]
        if cid in self.wanted:
            (self.failed if event["final"] else self.retried).add(cid)

    def dead_letter(self, custom_id: str | None, reason: str) -> None:
        if custom_id in self.wanted:
            self.dead.add(custom_id)
        elif self.unkeyed_dead < self.unkeyed:
            self.unkeyed_dead += 1
        else:
            return  # someone else's
        self.dead_reasons[reason] += 1

    def skip(self, custom_ids: Iterable[str]) -> None:
        self.skipped.update(cid for cid in custom_ids if cid in self.wanted)

    # What to show.

    def take_notes(self) -> list[str]:
        """What happened to held batches since last asked, each said once: held, submitted, completed."""
        for key in sorted(self._released):
            items = self._batch_items.get(key, [])
            if items and all(cid in self.succeeded or cid in self.failed or cid in self.retried or cid in self.dead
                             for cid in items):
                self._released.discard(key)
                results = sum(1 for cid in items if cid in self.succeeded)
                self._notes.append(f"batch {key} completed: {results:,} of its {len(items):,} items succeeded")
        notes, self._notes = self._notes, []
        return notes

    @property
    def total(self) -> int:
        """Every line published."""
        return len(self.wanted) + self.unkeyed

    @property
    def ended(self) -> int:
        return len(self.succeeded | self.failed | self.dead | self.skipped) + self.unkeyed_dead

    @property
    def dead_lettered(self) -> int:
        return len(self.dead) + self.unkeyed_dead

    @property
    def done(self) -> bool:
        return self.ended >= self.total

    @property
    def ok(self) -> bool:
        """Every item ended well: a result, or it had one already."""
        return (self.done and not (self.failed - self.succeeded) and not (self.dead - self.succeeded)
                and not self.unkeyed)

    def rate(self) -> float | None:
        """Items reaching an end per second, lately; None until two samples apart in time."""
        now, ended = self.clock(), self.ended
        if ended > self._last_ended[1]:
            self._last_ended = (now, ended)
        samples = self._samples
        samples.append((now, ended))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        first_at, first_ended = samples[0]
        return (ended - first_ended) / (now - first_at) if now > first_at else None

    def eta_s(self, rate: float | None) -> float | None:
        """Seconds to go at ``rate``; None unless items are ending now."""
        left = self.total - self.ended
        if left <= 0:
            return 0.0
        flowing = self.clock() - self._last_ended[0] <= FLOWING_S
        return left / rate if rate and flowing else None

    def line(self, bar_width: int = 0) -> str:
        """One line of figures; with a bar of ``bar_width`` characters in front when above 0."""
        total = self.total
        rate = self.rate()
        eta = self.eta_s(rate)
        parts = [f"{self.ended:,}/{total:,} ended",
                 f"batched {len(self.batched):,}", f"submitted {len(self.submitted):,}",
                 f"succeeded {len(self.succeeded):,}", f"failed {len(self.failed):,}",
                 f"retried {len(self.retried):,}"]
        if self.held:
            parts.append(f"batches held {len(self.held):,}")
        if self.dead_lettered:
            parts.append(f"dead-lettered {self.dead_lettered:,}")
        if self.skipped:
            parts.append(f"skipped {len(self.skipped):,}")
        if rate is not None:
            parts.append(f"{rate:,.0f}/s")
        if eta is not None and not self.done:
            parts.append(f"ETA {eta:,.0f}s")
        text = "  ".join(parts)
        if bar_width <= 0:
            return text
        filled = int(bar_width * self.ended / max(1, total))
        return f"[{'#' * filled}{'.' * (bar_width - filled)}] {text}"
