"""The daily budget for synchronous calls: leases granted on the one budget log, spent call by call; in-process,
two workers folding the same log."""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

import pytest

from core.budget import BudgetLog
from core.cost import DailyBudget
from core.leases import Lease
from streams.kafka.publish import Message
from streams.state.call_budget import CallBudget
from tests.clock import Clock

DAY = 86_400


class OneLog:
    """The budget topic as every worker folds it, in memory: reserves decided at once, settles folded as
    published; ``records`` is the log."""

    topic = "budget"

    def __init__(self, limit_usd: float, clock: Clock) -> None:
        self.budget = DailyBudget(limit_usd, clock)
        self.log = BudgetLog(self.budget)
        self.records: list[dict[str, Any]] = []

    def _append(self, doc: dict[str, Any]) -> int:
        self.records.append(doc)
        self.log.apply(len(self.records) - 1, doc)
        return len(self.records) - 1

    async def reserve(self, batch_key: str, day: int, usd: float) -> bool:
        offset = self._append({"kind": "reserve", "batch_key": batch_key, "day": day, "usd": usd})
        return bool(self.log.decision(batch_key, offset))

    async def publish(self, messages: Iterable[Message]) -> int:
        for message in messages:
            assert isinstance(message.value, dict)
            self._append(message.value)
        return 0


def worker(log: OneLog, lease_usd: float) -> CallBudget:
    return CallBudget(log, log.budget, log, lease_usd)  # type: ignore[arg-type]


def test_without_a_budget_every_call_has_room_and_nothing_is_written() -> None:
    log = OneLog(0.0, Clock(DAY))
    ticket = asyncio.run(worker(log, 1.0).take(5.0))
    assert ticket is not None and ticket.lease is None and not log.records


def test_calls_share_one_lease_and_ask_for_another_when_it_is_spent() -> None:
    async def run() -> None:
        log = OneLog(1.0, Clock(DAY))
        calls = worker(log, 0.1)
        tickets = [await calls.take(0.02) for _ in range(5)]
        assert all(t is not None for t in tickets) and len(log.records) == 1  # one reserve, five calls
        for ticket in tickets:
            assert ticket is not None
            calls.settle(ticket, 0.005)  # cost less than estimated
        more = [await calls.take(0.02) for _ in range(4)]  # 0.075 left of the first lease: three fit, then a new one
        assert all(t is not None for t in more) and [r["kind"] for r in log.records] == ["reserve", "reserve"]
        assert more[0] is not None and more[3] is not None and more[3].lease is not more[0].lease
        for ticket in more[:3]:  # the retired lease is settled once its last call is done
            assert ticket is not None
            calls.settle(ticket, 0.005)
        await asyncio.sleep(0)
        assert [r["kind"] for r in log.records] == ["reserve", "reserve", "settle"]
        first = log.records[0]["batch_key"]
        assert log.budget.counted(first) == (1, pytest.approx(0.04))  # counts, from now on, for what its calls cost
    asyncio.run(run())


def test_two_workers_never_hold_more_than_the_cap_and_near_it_lease_just_a_call() -> None:
    async def run() -> None:
        log = OneLog(0.25, Clock(DAY))
        pair = [worker(log, 0.1), worker(log, 0.1)]
        taken = 0.0
        for n in range(40):  # calls of $0.03 at most, alternately on each worker, none settled
            if await pair[n % 2].take(0.03) is not None:
                taken += 0.03
        assert taken <= 0.25 and log.budget.spent() <= 0.25 + 1e-9
        reserves = [r["usd"] for r in log.records if r["kind"] == "reserve"]
        assert 0.03 in reserves  # when a whole lease no longer fit, one of a call's size did
        assert await pair[0].take(0.03) is None  # the day is spent: the call waits, or is refused
        written = len(log.records)
        for _ in range(100):  # held calls asking again write nothing while nothing has changed
            assert await pair[0].take(0.03) is None
        assert len(log.records) == written
    asyncio.run(run())


def test_a_new_day_brings_a_new_lease() -> None:
    async def run() -> None:
        clock = Clock(DAY)
        log = OneLog(0.1, clock)
        calls = worker(log, 0.1)
        assert await calls.take(0.1) is not None and await calls.take(0.01) is None
        clock.now += DAY
        ticket = await calls.take(0.01)
        assert ticket is not None and ticket.lease is not None and ticket.lease.day == 2
    asyncio.run(run())


def test_a_lease_spends_no_more_than_it_was_granted() -> None:
    lease = Lease("k", 1, 0.1)
    first = lease.take(0.06, 1)
    assert first is not None and lease.take(0.06, 1) is None and lease.take(0.01, 2) is None
    lease.settle(first, 0.01)
    assert lease.left_usd == pytest.approx(0.09) and lease.take(0.06, 1) is not None
