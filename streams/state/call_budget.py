"""The daily budget for synchronous calls (the async, flex and realtime tiers, Bedrock's fallback): leases on the
shared budget log (``core.leases``), taken and given back call by call without a round trip each."""

from __future__ import annotations

import asyncio
import itertools
import secrets

import structlog

from core.cost import DailyBudget
from core.leases import Lease, Ticket
from streams.kafka.publish import Message, Publisher
from streams.state.budget import SharedBudget

__all__ = ["CallBudget"]

log = structlog.get_logger(__name__)


class CallBudget:
    """This worker's current lease, and those retired with calls still under way."""

    def __init__(self, shared: SharedBudget, budget: DailyBudget, publisher: Publisher, size_usd: float) -> None:
        self._shared, self._budget, self._publisher = shared, budget, publisher
        self._size_usd = size_usd
        self._lease: Lease | None = None
        self._asking = asyncio.Lock()
        self._names = (f"~calls#{secrets.token_hex(6)}#{n}" for n in itertools.count())
        self._settling: set[asyncio.Task[int]] = set()
        #: The day and its spend when the log last refused a call of ``_refused_usd``: until either changes, a call
        #: as large is refused without writing another reserve (thousands of held items ask every 30 s).
        self._refused: tuple[int, float] | None = None
        self._refused_usd = 0.0

    async def take(self, usd: float) -> Ticket | None:
        """Room for a call estimated at ``usd`` (at most) before it is made; None while the day's budget has none
        (the call waits, or is refused)."""
        if not self._budget.limit_usd:
            return Ticket(None, usd)
        day = self._budget.today()
        if self._lease is not None and (ticket := self._lease.take(usd, day)) is not None:
            return ticket
        async with self._asking:  # one lease asked for at a time; calls meanwhile share what it brings
            if self._lease is not None and (ticket := self._lease.take(usd, day)) is not None:
                return ticket
            if self._refused == (day, self._budget.spent()) and usd >= self._refused_usd:
                return None  # nothing has changed since the log said no: not asked again, not written again
            self._retire()
            for size in dict.fromkeys((max(usd, self._size_usd), usd)):  # near the cap, just the call's own
                key = next(self._names)
                if await self._shared.reserve(key, day, size):
                    self._lease, self._refused = Lease(key, day, size), None
                    log.info("budget_lease_granted", key=key, usd=round(size, 6), day=day)
                    return self._lease.take(usd, day)
            self._refused, self._refused_usd = (day, self._budget.spent()), usd
            return None

    def settle(self, ticket: Ticket, actual_usd: float) -> None:
        """The call is done; it cost ``actual_usd`` (0 if the provider billed nothing)."""
        lease = ticket.lease
        if lease is None:
            return
        lease.settle(ticket, actual_usd)
        if lease.retired and not lease.calls:
            self._publish_settle(lease)

    def _retire(self) -> None:
        lease, self._lease = self._lease, None
        if lease is None:
            return
        lease.retired = True
        if not lease.calls:
            self._publish_settle(lease)  # else when its last call is done

    def _publish_settle(self, lease: Lease) -> None:
        """The lease counts, from now on, for what its calls cost (``core.budget``'s ``settle``)."""
        message = Message(self._shared.topic, lease.key, {"kind": "settle", "batch_key": lease.key,
                                                          "usd": round(lease.spent_usd, 9)}, 0)
        task = asyncio.get_running_loop().create_task(self._publisher.publish([message]))
        self._settling.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[int]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # Unsettled, the lease counts for all it was granted: the day's room is under-, never overstated.
            log.warning("budget_lease_settle_failed", error=repr(error))

    async def close(self) -> None:
        """Retire the lease, and wait for the settles under way: a stopping worker gives back what it did not
        spend."""
        self._retire()
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
