"""One budget across workers (core.budget): every worker folds the same one-partition log in the same
order, so two releases at the same moment cannot both pass the cap; on an injected clock."""

from __future__ import annotations

from core.budget import BudgetLog
from core.cost import DAY, DailyBudget

TODAY = 20_000


def log(limit: float) -> BudgetLog:
    return BudgetLog(DailyBudget(limit, lambda: TODAY * DAY + 60.0))


def reserve(key: str, usd: float, day: int = TODAY) -> dict:
    return {"kind": "reserve", "batch_key": key, "day": day, "usd": usd}


def test_of_two_reserves_at_the_same_moment_the_one_the_log_puts_second_is_refused_by_every_worker() -> None:
    records = [reserve("a-1", 0.06), reserve("b-1", 0.06)]  # worker a and worker b, each seeing room for its own
    folds = [log(0.1), log(0.1)]
    for fold in folds:
        for offset, record in enumerate(records):
            fold.apply(offset, record)
    for fold in folds:
        assert fold.decision("a-1", 0) is True and fold.decision("b-1", 1) is False
        assert fold.budget.spent() == 0.06


def test_a_decision_waits_for_the_log_to_be_folded_that_far() -> None:
    fold = log(1.0)
    assert fold.decision("a-1", 0) is None
    fold.apply(0, reserve("a-1", 0.2))
    assert fold.decision("a-1", 0) is True


def test_actual_costs_free_room_and_a_refused_batch_is_granted_when_it_asks_again() -> None:
    fold = log(0.1)
    fold.apply(0, reserve("a-1", 0.06))
    fold.apply(1, reserve("b-1", 0.06))
    assert fold.decision("b-1", 1) is False
    fold.apply(2, {"kind": "settle", "batch_key": "a-1", "usd": 0.01})  # it cost less than estimated
    assert fold.budget.fits(0.06)
    fold.apply(3, reserve("b-1", 0.06))
    assert fold.decision("b-1", 3) is True and round(fold.budget.spent(), 6) == 0.07


def test_a_reserve_asked_again_is_granted_once_and_counted_once() -> None:
    fold = log(0.1)
    fold.apply(0, reserve("a-1", 0.06))
    fold.apply(1, reserve("a-1", 0.06))  # after a crash, the same batch asks again
    assert fold.decision("a-1", 1) is True and fold.budget.spent() == 0.06


def test_a_moved_share_is_never_refused_and_the_day_keeps_its_total() -> None:
    fold = log(0.1)
    fold.apply(0, reserve("a-1", 0.09))
    fold.apply(1, {"kind": "move", "batch_key": "a-1~x", "from": "a-1", "usd": 0.045})
    fold.apply(2, {"kind": "move", "batch_key": "a-1~y", "from": "a-1", "usd": 0.045})
    fold.apply(3, {"kind": "settle", "batch_key": "a-1", "usd": 0.0})  # the old batch, closed as replaced
    assert round(fold.budget.spent(), 6) == 0.09
    assert fold.budget.counted("a-1~x") == (TODAY, 0.045)


def test_yesterdays_spend_does_not_count_today_and_no_limit_grants_everything() -> None:
    fold = log(0.1)
    fold.apply(0, reserve("old", 0.09, day=TODAY - 1))
    fold.apply(1, reserve("new", 0.09))
    assert fold.decision("new", 1) is True
    free = log(0.0)
    free.apply(0, reserve("big", 1_000.0))
    assert free.decision("big", 0) is True


def test_records_that_are_not_budget_records_change_nothing() -> None:
    fold = log(0.1)
    for offset, doc in enumerate([None, [], {"kind": "reserve"}, {"kind": "reserve", "batch_key": "x", "usd": -1,
                                                                     "day": TODAY},
                                  {"kind": "reserve", "batch_key": "x", "usd": True, "day": TODAY},
                                  {"kind": "settle", "batch_key": "unknown", "usd": 5.0}, {"kind": "what"}]):
        fold.apply(offset, doc)
    assert fold.budget.spent() == 0.0 and fold.folded == 6
