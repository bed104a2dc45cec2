"""When a batch counts as stalled, as expired, or as close to losing its results; pure, clock injected.

- Stalled: its provider status (and counts) unchanged for ``stall_after_s``. Still polled;
  an alert is raised, and raised again every ``stall_after_s`` while it stays unchanged.
- Expired: past the provider's completion window (its spec's: 24 h from creation for Anthropic
  and OpenAI, 48 h for Gemini, the job's own expiry time for Bedrock) plus a
  grace period, and still not ended. tierline stops waiting: it cancels the batch and
  retries its unfinished items one by one.
- Forecast end: from the share of its requests a running batch has done, when it will have done all
  of them, were it to go on at the same pace: polled then, not at the backoff's next turn.
- Results at risk: an ended batch whose results could not be downloaded yet, within
  ``warn_before_s`` of the provider deleting them (Anthropic about 29 days after creation;
  OpenAI after the ``output_expires_after`` tierline sets, by default 30 days).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["FORECAST_MIN_S", "ProviderWindows", "StallWatch", "forecast_end", "past_expiry", "results_at_risk", "gone",
           "straggling"]

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class ProviderWindows:
    """How long a provider may take over a batch, and how long it keeps the results."""

    completion_s: float
    retention_s: float  # from the batch's creation (inf: they stay in the account's own storage)


EXPIRY_GRACE_S = 3_600.0  # the provider's own expiry takes a while to show in its status


def past_expiry(windows: ProviderWindows, created_at: float, now: float, grace_s: float = EXPIRY_GRACE_S,
                expires_at: float | None = None) -> bool:
    """Past the provider's own ``expires_at`` when it gave one (else its documented window), plus grace."""
    deadline = expires_at if expires_at is not None else created_at + windows.completion_s
    return now >= deadline + grace_s


#: A forecast is read as this much later than the pace says (a share of the time from the start): a poll just
#: before the last request is done finds the batch running and waits again.
FORECAST_MARGIN = 0.02
#: The least wait before a poll at a forecast end: a batch whose last requests lag is not asked after in a loop.
FORECAST_MIN_S = 0.5


def forecast_end(started_at: float, now: float, progress: tuple[int, int] | None) -> float | None:
    """When a batch begun at ``started_at`` will have done all its requests, from ``progress`` (done, in all) read
    ``now``; None while nothing is done yet, once all is (the provider is then writing the results, which no
    count foretells), or with no progress to go by."""
    if progress is None:
        return None
    done, total = progress
    if not 0 < done < total or now <= started_at:
        return None
    return started_at + (now - started_at) * total / done * (1 + FORECAST_MARGIN)


def straggling(deadline: float | None, now: float, async_sla_s: float) -> bool:
    """Whether a batch not yet ended must give up an item due by ``deadline``: only the async tier's
    SLA is left before it, so the item can still be had in time from the async tier."""
    return deadline is not None and now >= deadline - async_sla_s


def gone(created_at: float, now: float, grace_s: float) -> bool:
    """Whether a batch the provider answers 404 for is gone rather than not yet visible: the real APIs
    answer 404 for a while right after a create (anthropic-sdk-python#1432)."""
    return now - created_at >= grace_s


def results_at_risk(windows: ProviderWindows, created_at: float, now: float, warn_before_s: float) -> float | None:
    """Seconds left before the provider deletes the results, when that is under ``warn_before_s`` and under a
    quarter of how long it keeps them (Gemini keeps them two days: a first failed download is no emergency)."""
    kept = windows.retention_s
    left = created_at + kept - now
    return left if left < min(warn_before_s, kept / 4) else None


@dataclass(slots=True)
class StallWatch:
    """Feeds on each poll's observation; says when the batch has been unchanged too long."""

    stall_after_s: float
    clock: Callable[[], float]
    _seen: object = field(default=object())  # equal to no observation
    _since: float = 0.0
    _alerted_at: float | None = None

    def unchanged_s(self) -> float:
        """How long the last observation has held (0 before the first)."""
        return self.clock() - self._since if self._since else 0.0

    def observe(self, seen: object) -> float | None:
        """Record an observation; return how long it has been unchanged when an alert is due."""
        now = self.clock()
        if seen != self._seen:
            self._seen, self._since, self._alerted_at = seen, now, None
            return None
        unchanged = now - self._since
        last = self._alerted_at if self._alerted_at is not None else self._since
        if unchanged >= self.stall_after_s and now - last >= self.stall_after_s:
            self._alerted_at = now
            return unchanged
        return None
