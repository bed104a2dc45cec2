"""The daily budget's share a worker holds for its synchronous calls (async, flex, realtime, Bedrock's fallback);
pure.

A batch reserves its estimate on the budget log once; a call is too small and too quick for a round trip of its
own (the realtime tier has someone waiting). A worker instead reserves a *lease*, a share of the day's budget
granted on the log as any reserve is, and spends it locally: each call takes its estimate from the lease before
it is made and gives back the difference once its actual cost is known. A lease that cannot cover a call is
retired (settled on the log at what its calls cost) and another asked for, of ``size_usd`` or, near the cap, of
just the call's estimate. No call passes the cap, as no batch does: every dollar a call may spend was granted
by the one log every worker folds.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Lease", "Ticket"]


@dataclass(slots=True)
class Lease:
    """A share of one day's budget, granted under ``key``."""

    key: str
    day: int
    granted_usd: float
    held_usd: float = 0.0  # the estimates of calls under way
    spent_usd: float = 0.0  # the actual costs of calls done
    calls: int = 0  # under way
    retired: bool = False  # no more calls: settled once the last under way is done

    @property
    def left_usd(self) -> float:
        return self.granted_usd - self.held_usd - self.spent_usd

    def take(self, usd: float, day: int) -> Ticket | None:
        """Room for a call of estimate ``usd`` on ``day``, if the lease has it."""
        if self.retired or day != self.day or usd > self.left_usd:
            return None
        self.held_usd += usd
        self.calls += 1
        return Ticket(self, usd)

    def settle(self, ticket: Ticket, actual_usd: float) -> None:
        """The call is done and cost ``actual_usd`` (0 for one the provider did not bill)."""
        self.held_usd -= ticket.estimate_usd
        self.spent_usd += actual_usd
        self.calls -= 1

    @property
    def used_usd(self) -> float:
        """What the lease counts for on the log once retired: what was spent, and what is still under way."""
        return self.spent_usd + self.held_usd


@dataclass(slots=True)
class Ticket:
    """One call's room in a lease; ``lease`` None: no budget is set, nothing to count."""

    lease: Lease | None
    estimate_usd: float
